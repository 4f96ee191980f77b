-- A worker's heartbeat: marks it alive, renews the lease of each job it still owns (XCLAIM
-- JUSTID by the owner resets the entry's idle time without counting a delivery), reports
-- the jobs it lost and those whose caller cancelled, and removes workers that have been
-- silent for a long time and own nothing.
-- KEYS: 1-3 job streams, 4 workers, 5 stats.
-- ARGV: 1 group, 2 consumer, 3 cancel key prefix, 4 silent ms before cleanup, 5 lease ms,
--       6.. triples (stream index, entry id, job id).
-- The workers set scores each worker by the end of its lease: live ones score in the future.
-- Returns {{lost job ids}, {cancelled job ids}}.
local group, me = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[5]), me)
local lost, cancelled = {}, {}
for k = 6, #ARGV, 3 do
    local stream, id, job = KEYS[tonumber(ARGV[k])], ARGV[k + 1], ARGV[k + 2]
    local owner = redis.call('XPENDING', stream, group, id, id, 1)
    if #owner == 0 or owner[1][2] ~= me then
        redis.call('HINCRBY', KEYS[5], 'lost', 1)
        table.insert(lost, job)
    else
        redis.call('XCLAIM', stream, group, me, 0, id, 'JUSTID')
        if redis.call('EXISTS', ARGV[3] .. job) == 1 then
            table.insert(cancelled, job)
        end
    end
end
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[4]))) do
    local owns = false
    for i = 1, 3 do
        if redis.call('EXISTS', KEYS[i]) == 1
            and #redis.call('XPENDING', KEYS[i], group, '-', '+', 1, name) > 0 then
            owns = true
        end
    end
    if not owns then
        for i = 1, 3 do
            if redis.call('EXISTS', KEYS[i]) == 1 then
                redis.call('XGROUP', 'DELCONSUMER', KEYS[i], group, name)
            end
        end
        redis.call('ZREM', KEYS[4], name)
        redis.call('HINCRBY', KEYS[5], 'workers_removed', 1)
    end
end
return {lost, cancelled}
