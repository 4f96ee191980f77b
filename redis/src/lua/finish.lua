-- Ends one run of a job, but only for the consumer that owns the entry now: a worker that
-- lost its lease (paused, partitioned) and resumed can neither ack the job nor reply.
-- KEYS: 1 the job's stream, 2 attempts, 3 errors, 4 stats, 5 dead, 6 delayed,
--       7 the caller's reply stream ('' when unknown).
-- ARGV: 1 group, 2 consumer, 3 entry id, 4 job id, 5 mode (ok, failed, retry, discard),
--       6 stream index, 7 due ms (retry), 8 message, 9 attempts, 10 output, 11.. fields.
-- Returns 1, or 0 when this consumer does not own the entry.
local group, me, id, job, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local owner = redis.call('XPENDING', KEYS[1], group, id, id, 1)
if #owner == 0 or owner[1][2] ~= me then
    redis.call('HINCRBY', KEYS[4], 'lost', 1)
    return 0
end
redis.call('XACK', KEYS[1], group, id)
redis.call('XDEL', KEYS[1], id)
local reply = KEYS[7]
if mode == 'retry' then
    redis.call('HSET', KEYS[3], job, ARGV[8])
    redis.call('ZADD', KEYS[6], ARGV[7],
        cmsgpack.pack({tonumber(ARGV[6]), unpack(ARGV, 11)}))
    redis.call('HINCRBY', KEYS[4], 'retried', 1)
    return 1
end
redis.call('HDEL', KEYS[2], job)
redis.call('HDEL', KEYS[3], job)
if mode == 'ok' then
    redis.call('HINCRBY', KEYS[4], 'completed', 1)
    if reply ~= '' then
        redis.call('XADD', reply, '*', 'job', job, 'kind', 'ok', 'output', ARGV[10])
    end
elseif mode == 'failed' then
    redis.call('HINCRBY', KEYS[4], 'dead_lettered', 1)
    redis.call('XADD', KEYS[5], '*', 'reason', ARGV[8], 'attempts', ARGV[9], unpack(ARGV, 11))
    if reply ~= '' then
        redis.call('XADD', reply, '*', 'job', job, 'kind', 'failed',
            'attempts', ARGV[9], 'message', ARGV[8])
    end
else
    redis.call('HINCRBY', KEYS[4], 'cancelled', 1)
end
if reply ~= '' then
    redis.call('PEXPIRE', reply, 3600000)
end
return 1
