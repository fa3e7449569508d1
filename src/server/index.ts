export { serve, DEFAULT_MAX_IMAGE_PIXELS, type ServerOptions } from "./server.js";
