-- Argo CD health of a hakeeper LoadBalancer, from its status conditions.
-- Healthy: Ready for the current generation and nothing Degraded.
-- Progressing: not yet observed, or rolling out a new config.
-- Degraded: refused (the spec, its class, an address, a conflict) or in
-- trouble (a rejected config, no node or several nodes holding the VIP,
-- backends without a server up); the message is the operator's.
local hs = {}

local function condition(t)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == t then
      return c
    end
  end
  return nil
end

if obj.status == nil or obj.status.observedGeneration == nil or
    obj.metadata.generation ~= obj.status.observedGeneration then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end

local ready = condition("Ready")
local progressing = condition("Progressing")
local degraded = condition("Degraded")

if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = degraded.reason .. ": " .. degraded.message
  return hs
end
if progressing ~= nil and progressing.status == "True" then
  hs.status = "Progressing"
  hs.message = progressing.message
  return hs
end
if progressing ~= nil and progressing.status == "Unknown" then
  -- The last reconcile failed and is retried (ReconcileError).
  hs.status = "Progressing"
  hs.message = progressing.reason .. ": " .. progressing.message
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
hs.status = "Degraded"
if ready ~= nil then
  hs.message = ready.reason .. ": " .. ready.message
else
  hs.message = "No Ready condition"
end
return hs
