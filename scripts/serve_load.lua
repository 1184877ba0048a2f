-- wrk script for scripts/serve_load.sh: POSTs one pre-built KServe v2 request (JSON header
-- plus binary tensor data) on every connection. RG_BODY names the body file,
-- RG_HEADER_LEN the length of its JSON header, RG_PATH the infer URL path.
local f = assert(io.open(os.getenv("RG_BODY"), "rb"))
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = os.getenv("RG_PATH")
wrk.body = body
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = os.getenv("RG_HEADER_LEN")
