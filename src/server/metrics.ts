/** Prometheus metrics (prom-client, a registry of our own so two servers in one process do not collide). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { BatchReport } from "./batcher.js";

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: "bridgetower_requests_total",
    help: "HTTP requests answered, by route, method and status",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: "bridgetower_request_duration_seconds",
    help: "Time from request to response, by route",
    labelNames: ["route"] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  private readonly queueTime = new Histogram({
    name: "bridgetower_queue_seconds",
    help: "Time an input waited in the queue before its batch ran, by kind",
    labelNames: ["kind"] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  private readonly inferenceTime = new Histogram({
    name: "bridgetower_inference_seconds",
    help: "Time one batch ran on the model, by kind",
    labelNames: ["kind"] as const,
    buckets: SECONDS,
    registers: [this.registry],
  });
  private readonly batchSize = new Histogram({
    name: "bridgetower_batch_size",
    help: "Inputs per batch, by kind",
    labelNames: ["kind"] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  private readonly searchTime = new Histogram({
    name: "bridgetower_search_seconds",
    help: "Time one vector search took in the collection (--db), after the query was embedded",
    buckets: SECONDS,
    registers: [this.registry],
  });

  constructor(queued: () => number, inFlight: () => number) {
    collectDefaultMetrics({ register: this.registry, prefix: "bridgetower_" });
    new Gauge({
      name: "bridgetower_queue_size",
      help: "Inputs waiting in the batching queues",
      registers: [this.registry],
      collect() {
        this.set(queued());
      },
    });
    new Gauge({
      name: "bridgetower_requests_in_flight",
      help: "Requests received and not yet answered",
      registers: [this.registry],
      collect() {
        this.set(inFlight());
      },
    });
  }

  request(route: string, method: string, status: number, seconds: number): void {
    this.requests.inc({ route, method, status: String(status) });
    this.duration.observe({ route }, seconds);
  }

  batch(r: BatchReport): void {
    for (const w of r.waited) this.queueTime.observe({ kind: r.kind }, w);
    this.inferenceTime.observe({ kind: r.kind }, r.ran);
    this.batchSize.observe({ kind: r.kind }, r.size);
  }

  search(seconds: number): void {
    this.searchTime.observe(seconds);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
