-- wrk script: POSTs `plan(id)` with a Bearer token. PLAN_ID and TOKEN come from the environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
wrk.body = '{"query":"query($id: ID!) { plan(id: $id) { id status progress removedLayers } }","variables":{"id":"' .. (os.getenv("PLAN_ID") or "p") .. '"}}'
