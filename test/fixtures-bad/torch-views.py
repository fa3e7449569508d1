# Generates test/fixtures-bad/torch-views.{bin,json}: a real torch.save file with views, shared storages and dtypes.
import torch, json, collections
torch.manual_seed(0)
base = torch.randn(3, 4)
sd = collections.OrderedDict()
sd["w"] = base
sd["w_t"] = base.t()                 # transposed view of w's storage
sd["w_slice"] = base[1:3, 1:4]       # storage offset + row stride 4
sd["w_step"] = base[::2, ::3]        # strides (8, 3)
sd["w_row"] = base[2]                # contiguous view at an offset
sd["w_tied"] = base                  # same tensor twice
sd["scalar"] = torch.tensor(2.5)
sd["empty"] = torch.zeros(0, 4)
sd["position_ids"] = torch.arange(6).unsqueeze(0)
sd["half"] = torch.randn(2, 3).half()
sd["bf16"] = torch.randn(3).bfloat16()
sd["i32"] = torch.arange(3, dtype=torch.int32)
sd["u8"] = torch.arange(3, dtype=torch.uint8)
sd["bool"] = torch.tensor([True, False, True])
sd["f64"] = torch.randn(2).double()
sd["param"] = torch.nn.Parameter(torch.randn(2))
sd["unit_dims"] = torch.randn(1, 3, 1).transpose(0, 2)  # size-1 dims with odd strides: still contiguous
sd._metadata = collections.OrderedDict({"": {"version": 1}})
torch.save(sd, "torch-views.bin")
dt = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
      torch.uint8: "U8", torch.bool: "BOOL", torch.float64: "F64"}
exp = {k: {"dtype": dt[v.dtype], "shape": list(v.shape), "contiguous": v.is_contiguous(),
           "hex": v.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes().hex() if v.numel() else ""}
       for k, v in sd.items()}
json.dump(exp, open("torch-views.json", "w"), indent=1)
