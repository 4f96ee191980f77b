-- A worker takes up to n jobs, highest priority first: due retries are promoted, then
-- (when asked) entries whose lease expired are claimed from lost workers, then new entries
-- are read. Cancelled and expired jobs are dropped here, unrun; a job started more than
-- max_attempts times (its workers kept dying) goes to the dead letters.
-- KEYS: 1-3 job streams, 4 delayed, 5 attempts, 6 errors, 7 stats, 8 dead.
-- ARGV: 1 group, 2 consumer, 3 n, 4 lease ms, 5 reclaim (1/0), 6 max attempts,
--       7 cancel key prefix.
-- Returns {{{stream index, entry id, attempt, fields}...}, {last ids}, next due ms or -1}.
local group, me = ARGV[1], ARGV[2]
local n, lease, max_attempts = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 100)) do
    local held = cmsgpack.unpack(member)
    redis.call('XADD', KEYS[held[1]], '*', unpack(held, 2))
    redis.call('ZREM', KEYS[4], member)
end

local out = {}
local function drop(stream, id, job, stat)
    redis.call('XACK', stream, group, id)
    redis.call('XDEL', stream, id)
    if job then
        redis.call('HDEL', KEYS[5], job)
        redis.call('HDEL', KEYS[6], job)
    end
    redis.call('HINCRBY', KEYS[7], stat, 1)
end
local function consider(i, id, fields)
    local job, reply, deadline
    for k = 1, #fields, 2 do
        local f = fields[k]
        if f == 'job' then job = fields[k + 1]
        elseif f == 'reply' then reply = fields[k + 1]
        elseif f == 'deadline' then deadline = tonumber(fields[k + 1]) end
    end
    if not job then
        -- Malformed: the worker dead-letters it with the reason.
        table.insert(out, {i, id, 0, fields})
        return
    end
    if redis.call('EXISTS', ARGV[7] .. job) == 1 then
        return drop(KEYS[i], id, job, 'cancelled')
    end
    if deadline and deadline > 0 and deadline < now then
        return drop(KEYS[i], id, job, 'expired')
    end
    local attempt = redis.call('HINCRBY', KEYS[5], job, 1)
    if attempt > max_attempts then
        local message = redis.call('HGET', KEYS[6], job)
            or 'the worker running it was lost (its lease expired)'
        local tried = tostring(attempt - 1)
        redis.call('XADD', KEYS[8], '*', 'reason', message, 'attempts', tried, unpack(fields))
        if reply and reply ~= '' then
            redis.call('XADD', reply, '*', 'job', job, 'kind', 'failed',
                'attempts', tried, 'message', message)
            redis.call('PEXPIRE', reply, 3600000)
        end
        return drop(KEYS[i], id, job, 'dead_lettered')
    end
    table.insert(out, {i, id, attempt, fields})
end

if ARGV[5] == '1' then
    for i = 1, 3 do
        -- A bounded scan of the whole pending list, from its start.
        local cursor, rounds = '0-0', 0
        while #out < n and rounds < 10 and redis.call('EXISTS', KEYS[i]) == 1 do
            local r = redis.call('XAUTOCLAIM', KEYS[i], group, me, lease, cursor,
                'COUNT', n - #out)
            for _, e in ipairs(r[2]) do
                if e[2] then
                    redis.call('HINCRBY', KEYS[7], 'redelivered', 1)
                    consider(i, e[1], e[2])
                end
            end
            cursor, rounds = r[1], rounds + 1
            if cursor == '0-0' then break end
        end
    end
end
for i = 1, 3 do
    if #out < n then
        local r = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', n - #out,
            'STREAMS', KEYS[i], '>')
        if r then
            for _, e in ipairs(r[1][2]) do consider(i, e[1], e[2]) end
        end
    end
end

-- Where to wait from, needed only when nothing was taken (the worker then blocks on XREAD).
local last = {}
if #out == 0 then
    for i = 1, 3 do
        local top = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
        last[i] = top[1] and top[1][1] or '0-0'
    end
end
local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
local due = first[2] and tonumber(first[2]) or -1
return {out, last, due}
