-- Adds one job unless the queue's backlog (entries in the three streams, waiting or
-- running, plus jobs waiting out a retry backoff) has reached the cap.
-- KEYS: 1-3 the job streams, 4 the delayed set, 5 the stream to add to.
-- ARGV: 1 the cap (0: none), 2.. the entry's field/value pairs.
-- Returns {added (0/1), backlog after}.
local backlog = redis.call('XLEN', KEYS[1]) + redis.call('XLEN', KEYS[2])
    + redis.call('XLEN', KEYS[3]) + redis.call('ZCARD', KEYS[4])
local cap = tonumber(ARGV[1])
if cap > 0 and backlog >= cap then
    return {0, backlog}
end
redis.call('XADD', KEYS[5], '*', unpack(ARGV, 2))
return {1, backlog + 1}
