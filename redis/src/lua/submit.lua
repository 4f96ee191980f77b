-- Adds a batch of jobs, each unless the queue's backlog (entries in the three streams,
-- waiting or running, plus jobs waiting out a retry backoff) has reached the cap then.
-- The payloads are not arguments: Redis's Lua hashes every byte of every string it is
-- handed, which for a 266 KB image was most of Redis's time per job. The caller stores
-- them in the payloads hash in the same MULTI, just before this script; a refused job's
-- payload is deleted here.
-- KEYS: 1-3 the job streams, 4 the delayed set, 5 workers, 6 stats, 7 payloads.
-- ARGV: 1 the cap (0: none), 2 number of jobs, then per job: the stream index to add to,
--       the number of fields, the entry's field/value pairs.
-- Returns per job {1, backlog after}, or when refused {0, backlog, live workers, the
-- workers' summed service time in µs, the runs it covers} (what a retry hint is estimated
-- from).
local backlog = redis.call('XLEN', KEYS[1]) + redis.call('XLEN', KEYS[2])
    + redis.call('XLEN', KEYS[3]) + redis.call('ZCARD', KEYS[4])
local cap = tonumber(ARGV[1])
local refused
local out = {}
local k = 3
for j = 1, tonumber(ARGV[2]) do
    local i, first, last = tonumber(ARGV[k]), k + 2, k + 1 + tonumber(ARGV[k + 1])
    k = last + 1
    if cap > 0 and backlog >= cap then
        if not refused then
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            local live = redis.call('ZCOUNT', KEYS[5], now, '+inf')
            local service = redis.call('HMGET', KEYS[6], 'service_us', 'service_runs')
            refused = {0, backlog, live, tonumber(service[1]) or 0, tonumber(service[2]) or 0}
        end
        out[j] = refused
        for f = first, last - 1, 2 do
            if ARGV[f] == 'job' then redis.call('HDEL', KEYS[7], ARGV[f + 1]) end
        end
    else
        redis.call('XADD', KEYS[i], '*', unpack(ARGV, first, last))
        backlog = backlog + 1
        out[j] = {1, backlog}
    end
end
return out
