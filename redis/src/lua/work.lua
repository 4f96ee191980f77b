-- One step of a worker, in one round trip: end the runs it finished (each owner-checked),
-- then take up to n jobs, highest priority first. A worker that lost a job's lease (paused,
-- partitioned) and resumed can neither ack that job nor reply to it.
--
-- Ending a run, by mode: `ok` replies with the output; `failed` dead-letters the job and
-- replies with the error; `retry` parks the job in the delayed set until its backoff is
-- due; `discard` drops it (cancelled, or its deadline passed while it ran).
-- Taking: due retries are promoted, then (when asked) entries whose lease expired are
-- claimed from lost workers, then new entries are read. Cancelled and expired jobs are
-- dropped here, unrun; a job started more than max_attempts times (its workers kept dying)
-- goes to the dead letters.
--
-- Payloads live in their own hash (see submit.lua), never read here on the common path:
-- the worker fetches them with HMGET once it has the jobs. Whatever ends a job deletes
-- its payload; a dead letter keeps it (the worker sends it back, or it is copied here), and
-- a retry carries it in its re-queued entry.
--
-- KEYS: 1-3 job streams, 4 delayed, 5 errors, 6 stats, 7 dead, 8 payloads,
--       9.. the reply streams the finished runs name.
-- ARGV: 1 group, 2 consumer, 3 n, 4 lease ms, 5 reclaim (1/0), 6 max attempts,
--       7 cancel key prefix, 8 the finished runs' time on the worker's threads, in µs
--       divided by its thread count (its service time), 9 how many runs that time covers,
--       10 number of finished runs, 11 the prefix of this queue's reply streams (a reply
--       key an entry names outside it is never written to), then per run: stream index, entry
--       id, job id, mode, due ms (retry), message, attempts, output, 1 when the payload
--       came from the payloads hash (else 0), reply key index into KEYS (0: none), number of
--       fields, the entry's fields (for `retry` and `failed`).
--
-- Checks that are almost always negative are made once per step rather than once per job,
-- so a job costs fewer commands (and the AOF fewer writes): ownership (one XPENDING per
-- stream) and cancellation (one EXISTS over every cancel key).
-- Returns {{1 or 0 per finished run (0: not the owner)},
--          {{stream index, entry id, attempt, fields}...}, {last ids}, next due ms or -1}.
local group, me = ARGV[1], ARGV[2]
local n, lease, max_attempts = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local counts = {}
local function count(stat, by)
    counts[stat] = (counts[stat] or 0) + by
end

-- What a job leaves behind once it has ended: its last error (only a retried job has one)
-- and its payload (only a large one is in the hash).
local function forget(job, retried, stored)
    if retried then redis.call('HDEL', KEYS[5], job) end
    if stored then redis.call('HDEL', KEYS[8], job) end
end

-- Ending runs. Acks and deletes are gathered per stream; reply keys are touched once.
local acked = {{}, {}, {}}
local touched = {}
local ended = {}
local runs = {}
local reply_prefix = ARGV[11]
local k = 12
for r = 1, tonumber(ARGV[10]) do
    local first, last = k + 11, k + 10 + tonumber(ARGV[k + 10])
    runs[r] = {k, first, last}
    k = last + 1
end

-- Which of the finished runs' entries this worker still owns: its own pending entries,
-- one XPENDING per stream (a worker has few). A reply that may have been cut short by the
-- count is checked entry by entry for what it did not list.
local owned = {{}, {}, {}}
local asked = {0, 0, 0}
for _, run in ipairs(runs) do
    local i = tonumber(ARGV[run[1]])
    asked[i] = asked[i] + 1
end
for i = 1, 3 do
    if asked[i] > 0 then
        local limit = asked[i] + 64
        local mine = redis.call('XPENDING', KEYS[i], group, '-', '+', limit, me)
        for _, p in ipairs(mine) do owned[i][p[1]] = true end
        if #mine >= limit then owned[i].partial = true end
    end
end
local function owns(i, id)
    if owned[i][id] then return true end
    if not owned[i].partial then return false end
    local owner = redis.call('XPENDING', KEYS[i], group, id, id, 1)
    return #owner > 0 and owner[1][2] == me
end

for _, run in ipairs(runs) do
    local k, first, last = run[1], run[2], run[3]
    local i, id, job, mode = tonumber(ARGV[k]), ARGV[k + 1], ARGV[k + 2], ARGV[k + 3]
    local due, message, attempts, output = ARGV[k + 4], ARGV[k + 5], ARGV[k + 6], ARGV[k + 7]
    local stored, reply = ARGV[k + 8] == '1', tonumber(ARGV[k + 9])
    if not owns(i, id) then
        count('lost', 1)
        table.insert(ended, 0)
    else
        table.insert(ended, 1)
        table.insert(acked[i], id)
        local reply_key = reply > 0 and KEYS[reply] or nil
        if mode == 'retry' then
            -- The entry re-queued from the fields carries its payload from now on.
            if stored then redis.call('HDEL', KEYS[8], job) end
            redis.call('HSET', KEYS[5], job, message)
            redis.call('ZADD', KEYS[4], due, cmsgpack.pack({i, unpack(ARGV, first, last)}))
            count('retried', 1)
        else
            forget(job, attempts ~= '1', stored)
            if mode == 'ok' then
                count('completed', 1)
                if reply_key then
                    redis.call('XADD', reply_key, '*', 'job', job, 'kind', 'ok', 'output', output)
                end
            elseif mode == 'failed' then
                count('dead_lettered', 1)
                redis.call('XADD', KEYS[7], '*', 'reason', message, 'attempts', attempts,
                    unpack(ARGV, first, last))
                if reply_key then
                    redis.call('XADD', reply_key, '*', 'job', job, 'kind', 'failed',
                        'attempts', attempts, 'message', message)
                end
            else
                count('cancelled', 1)
            end
            if reply_key then
                touched[reply_key] = true
            end
        end
    end
end
for i = 1, 3 do
    if #acked[i] > 0 then
        redis.call('XACK', KEYS[i], group, unpack(acked[i]))
        redis.call('XDEL', KEYS[i], unpack(acked[i]))
    end
end

-- Taking. Retries that fell due go back to their streams first. The earliest one is looked
-- at before anything is promoted (usually none is due: one call instead of two), and what
-- is left tells the worker when to look again. Nothing below adds to the delayed set.
local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
if first[2] and tonumber(first[2]) <= now then
    for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 100)) do
        local held = cmsgpack.unpack(member)
        redis.call('XADD', KEYS[held[1]], '*', unpack(held, 2))
        redis.call('ZREM', KEYS[4], member)
    end
    first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
end

local out = {}
local function drop(stream, id, job, stored, stat)
    redis.call('XACK', stream, group, id)
    redis.call('XDEL', stream, id)
    if job then
        -- Not started here, so it may have been retried before: its error goes too.
        forget(job, true, stored)
    end
    count(stat, 1)
end
-- `cancels`: whether any of the entries read with this one has a cancel key (checked once
-- for all of them by `consider_all`); only then is this one's looked up. `reclaimed`: taken
-- over from a lost worker rather than read new.
--
-- Which start of its job this is: the starts before its entry was queued (the `started`
-- field a retry writes; none for a new job) plus the times the group delivered this entry,
-- which is 1 for an entry read new and counted by Redis for one reclaimed (XAUTOCLAIM adds
-- one per claim, the owner's lease renewals with JUSTID do not).
local function consider(i, id, fields, cancels, reclaimed)
    local job, reply, deadline
    local stored, started = true, 0
    for f = 1, #fields, 2 do
        local name = fields[f]
        if name == 'job' then job = fields[f + 1]
        elseif name == 'reply' then reply = fields[f + 1]
        elseif name == 'deadline' then deadline = tonumber(fields[f + 1])
        elseif name == 'started' then started = tonumber(fields[f + 1]) or 0
        elseif name == 'payload' then stored = false end
    end
    if not job then
        -- Malformed: the worker dead-letters it with the reason.
        table.insert(out, {i, id, 0, fields})
        return
    end
    if cancels and redis.call('EXISTS', ARGV[7] .. job) == 1 then
        return drop(KEYS[i], id, job, stored, 'cancelled')
    end
    if deadline and deadline > 0 and deadline < now then
        return drop(KEYS[i], id, job, stored, 'expired')
    end
    local delivered = 1
    if reclaimed then
        local p = redis.call('XPENDING', KEYS[i], group, id, id, 1)
        delivered = p[1] and p[1][4] or 1
    end
    local attempt = started + delivered
    if attempt > max_attempts then
        local message = redis.call('HGET', KEYS[5], job)
            or 'the worker running it was lost (its lease expired)'
        local tried = tostring(attempt - 1)
        -- The one place a payload enters Lua: rare, and the dead letter should keep it.
        local payload = redis.call('HGET', KEYS[8], job)
        if payload then
            table.insert(fields, 'payload')
            table.insert(fields, payload)
        end
        redis.call('XADD', KEYS[7], '*', 'reason', message, 'attempts', tried, unpack(fields))
        if reply and reply ~= '' and reply:sub(1, #reply_prefix) == reply_prefix then
            redis.call('XADD', reply, '*', 'job', job, 'kind', 'failed',
                'attempts', tried, 'message', message)
            touched[reply] = true
        end
        return drop(KEYS[i], id, job, stored, 'dead_lettered')
    end
    table.insert(out, {i, id, attempt, fields})
end
-- Considers entries read together from stream `i`, with one EXISTS over all their cancel
-- keys: cancellations are rare, so its usual answer (none) spares a call per job.
local function consider_all(i, entries, reclaimed)
    local cancel_keys = {}
    for _, e in ipairs(entries) do
        for f = 1, #e[2], 2 do
            if e[2][f] == 'job' then
                table.insert(cancel_keys, ARGV[7] .. e[2][f + 1])
                break
            end
        end
    end
    local cancels = #cancel_keys > 0 and redis.call('EXISTS', unpack(cancel_keys)) > 0
    for _, e in ipairs(entries) do consider(i, e[1], e[2], cancels, reclaimed) end
end

if n > 0 and ARGV[5] == '1' then
    for i = 1, 3 do
        -- A bounded scan of the whole pending list, from its start.
        local cursor, rounds = '0-0', 0
        while #out < n and rounds < 10 and redis.call('EXISTS', KEYS[i]) == 1 do
            local r = redis.call('XAUTOCLAIM', KEYS[i], group, me, lease, cursor,
                'COUNT', n - #out)
            local live = {}
            for _, e in ipairs(r[2]) do
                if e[2] then table.insert(live, e) end
            end
            if #live > 0 then count('redelivered', #live) end
            consider_all(i, live, true)
            cursor, rounds = r[1], rounds + 1
            if cursor == '0-0' then break end
        end
    end
end
for i = 1, 3 do
    if #out < n then
        local r = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', n - #out,
            'STREAMS', KEYS[i], '>')
        if r then consider_all(i, r[1][2], false) end
    end
end

for key in pairs(touched) do
    redis.call('PEXPIRE', key, 3600000)
end
if tonumber(ARGV[9]) > 0 then
    count('service_us', tonumber(ARGV[8]))
    count('service_runs', tonumber(ARGV[9]))
end
for stat, by in pairs(counts) do
    redis.call('HINCRBY', KEYS[6], stat, by)
end

-- Where to wait from, needed only when nothing was taken (the worker then blocks on XREAD).
local last = {}
if n > 0 and #out == 0 then
    for i = 1, 3 do
        local top = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
        last[i] = top[1] and top[1][1] or '0-0'
    end
end
local due = first[2] and tonumber(first[2]) or -1
return {ended, out, last, due}
