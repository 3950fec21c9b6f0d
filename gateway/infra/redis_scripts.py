"""The Lua scripts of the Redis store: every multi-key step runs as ONE script, hence atomically.

Key layout (``B`` is ``{<key_prefix>}:``; the braces make the prefix a Redis Cluster hash tag, so every key of
one gateway deployment lives in ONE hash slot and a script may touch any of them):

    B ledger              LIST    leaf bytes; index = list position (dense from 0, append-only)
    B cursor              STRING  last inbox cursor handed out (INCR; global, so strictly increasing per recipient)
    B cursors             HASH    cursor -> recipient "\\n" message suffix (ack ownership checks; never removed)
    B m:<suffix>          HASH    one accepted message (fields below); <suffix> = len(sender) ":" sender ":" id
    B i:<recipient>       ZSET    unacknowledged inbox: member = message suffix, score = cursor
    B r:<replay key>      STRING  replay claim, expiring at its ``expires`` (SET NX PXAT)
    B recipients          SET     every recipient that ever had an inbox item (inbox depths)
    B d:<cursor>          HASH    push state of one inbox item: attempts, outcome, status, updated_at, next_at,
                                  receipt (a delivered relay entry: the peer gateway's receipt), code (a failed
                                  relay attempt: the peer's stable error code, else "")
    B q:<recipient>       ZSET    push work due at once (new or redriven), score = cursor
    B t:<recipient>       ZSET    push retries, score = next attempt time (microseconds since the epoch)
    B x:<recipient>, B x  ZSET    dead letters of a recipient / of everyone, score = cursor
    B f:<suffix>          STRING  a forward's ROOT original (a forward of a forward links to the same root)
    B p:<suffix>          STRING  a forward's PARENT, the message it forwards (absent for forwards stored before
                                  parents were kept: they count as children of the root)
    B c:<suffix>          LIST    the forwards of a root original, in acceptance order
    B s:<suffix>          HASH    per-recipient state of one message (the status endpoint): "c:<recipient>" its
                                  inbox cursor, "s:<recipient>" when the entry left the inbox (ack, delivery,
                                  recall; RFC 3339), "w:<recipient>" the suffix of the recall that withdrew it
                                  (absent for messages stored before issue 20: status then reads the inboxes)
                          A relay entry (issue 19) is an inbox item of the recipient ``relay:<peer id>``
                          (``ports.relay_queue``); the message hash then has a field "relays", JSON
                          {peer: [remote recipients]}, and its remote recipients have no inbox entry. A recall
                          withdraws a copy's relay entries like inbox entries; the remote recipients they carry
                          are no local holders (``ports.RelayStore`` Rule 3).
    B port:<LOCODE>:...   port release streams and standings (layout in ``redis_ports``); written by "P" below
    B port-applied        SET     "<sender>\x1f<message id>" of every message applied to a port's stream
    B policy              STRING  the policy set digest every process follows (``ports.PolicyBoard``; not scripted)

Rule 1: ``SEQUENCE`` validates a whole batch of ledger-appending writes (accept, record, ack) and either
        writes ALL of it or NOTHING: it writes only when ``LLEN ledger`` still equals the size the caller
        signed its receipts for (the ledger size is the fencing token) and no operation is invalid.
Rule 2: in check mode (expected size ``-1``) it writes nothing and reports the size and the invalid
        operations, so no receipt is signed for a known duplicate.
Rule 3: keys are built inside the scripts from ``B``; all of them carry the same hash tag.
"""

from __future__ import annotations

# Message hash fields, in the order ``redis_store`` writes and reads them.
MESSAGE_FIELDS = ("type", "recipients", "jws", "payload", "digest", "received_at", "receipt", "leaf_index")

# ARGV: B, expected_size (-1: check only), n_ops, then per op:
#   "A" suffix leaf n_recipients recipient... n_fields field value ...   (accept)
#   "F" original, then as "A"                                           (accept a forward of original)
#   "C" original whole, then as "A"                                     (accept a recall of original; whole
#                                                                        "1": the whole tree, when the home
#                                                                        administration's recall policy permitted it)
#   "R" leaf                                                            (record)
#   "K" recipient leaf at n_cursors cursor...                           (ack; at: RFC 3339 time)
#   "D" recipient leaf cursor outcome status updated_at next_at expect receipt code  (push attempt; next_at ""
#                                                                        unless retry; expect: the attempts it
#                                                                        follows; receipt: a delivered relay's,
#                                                                        else ""; code: a failed relay's peer
#                                                                        error code, else "")
#   "V" leaf updated_at n_cursors cursor...                             (redrive dead letters)
#   "P" port mark head n_changes (entry field standing bl container)... leaf alert   (a port decision: the
#       stream entries, standings and applied mark of a plan numbered from head + 1, and its port_update leaf;
#       alert "1" is followed by a gateway message as in "A" (suffix leaf ...), stored with its own leaf first,
#       alert "0" by nothing. Issue 17: the decision, its ledger event and its alert are one write.)
# Reply: {"OK", size_before, result...} (result: 0 for A and R, newly acked count for K, redriven count for V,
#        {attempts, outcome, message suffix} for D, {sorted holders, withdrawn suffixes} for C)
#     or {"NO", size, verdict...} (verdict: 0 ok, -1 duplicate message, -2 unknown original,
#        -3 the port's stream moved past head (re-plan), -4 the message was applied to its port before,
#        -5 stale push attempt (the item is no longer pending, or ``expect`` is not its stored attempts: a
#        recorded outcome is final), i > 0 cursor i is not the recipient's)
SEQUENCE = r"""
local base = ARGV[1]
local expected = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local ledger = base .. 'ledger'
local size = redis.call('LLEN', ledger)

-- a message's arguments from ARGV[p + 1] (suffix leaf n_recipients recipient... n_fields field value ...);
-- returns the position of the next operation
local function parse_message(op, p)
  op.suffix = ARGV[p + 1]; op.message_leaf = ARGV[p + 2]
  local nr = tonumber(ARGV[p + 3]); op.recipients = {}
  for k = 1, nr do op.recipients[k] = ARGV[p + 3 + k] end
  p = p + 4 + nr
  local nf = tonumber(ARGV[p]); op.fields = {}
  for k = 1, 2 * nf do op.fields[k] = ARGV[p + k] end
  return p + 1 + 2 * nf
end

local ops = {}
local p = 4
for j = 1, n do
  local kind = ARGV[p]
  local op = {kind = kind}
  if kind == 'F' or kind == 'C' then
    op.original = ARGV[p + 1]
    p = p + 1
  end
  if kind == 'C' then
    op.whole = ARGV[p + 1] == '1'
    p = p + 1
  end
  if kind == 'A' or kind == 'F' or kind == 'C' then
    p = parse_message(op, p)
    op.leaf = op.message_leaf
  elseif kind == 'P' then
    op.port = ARGV[p + 1]; op.mark = ARGV[p + 2]; op.head = tonumber(ARGV[p + 3])
    local nc = tonumber(ARGV[p + 4]); op.changes = {}
    p = p + 5
    for k = 1, nc do
      op.changes[k] = {ARGV[p], ARGV[p + 1], ARGV[p + 2], ARGV[p + 3], ARGV[p + 4]}
      p = p + 5
    end
    op.leaf = ARGV[p]
    if ARGV[p + 1] == '1' then
      p = parse_message(op, p + 1)
    else
      p = p + 2
    end
  elseif kind == 'R' then
    op.leaf = ARGV[p + 1]; p = p + 2
  elseif kind == 'K' then
    op.recipient = ARGV[p + 1]; op.leaf = ARGV[p + 2]; op.at = ARGV[p + 3]
    local nc = tonumber(ARGV[p + 4]); op.cursors = {}
    for k = 1, nc do op.cursors[k] = ARGV[p + 4 + k] end
    p = p + 5 + nc
  elseif kind == 'D' then
    op.recipient = ARGV[p + 1]; op.leaf = ARGV[p + 2]; op.cursors = {ARGV[p + 3]}
    op.outcome = ARGV[p + 4]; op.status = ARGV[p + 5]; op.at = ARGV[p + 6]; op.next_at = ARGV[p + 7]
    op.expect = tonumber(ARGV[p + 8]); op.receipt = ARGV[p + 9]; op.code = ARGV[p + 10]
    p = p + 11
  elseif kind == 'V' then
    op.leaf = ARGV[p + 1]; op.at = ARGV[p + 2]
    local nc = tonumber(ARGV[p + 3]); op.cursors = {}
    for k = 1, nc do op.cursors[k] = ARGV[p + 3 + k] end
    p = p + 4 + nc
  else
    return redis.error_reply('unknown op ' .. tostring(kind))
  end
  ops[j] = op
end

local verdicts = {}
local bad = false
local seen = {}
local ports_seen = {}
for j = 1, n do
  local op = ops[j]
  local verdict = 0
  if op.kind == 'P' then
    if redis.call('SISMEMBER', base .. 'port-applied', op.mark) == 1 then
      verdict = -4
    elseif ports_seen[op.port] or redis.call('LLEN', base .. 'port:' .. op.port .. ':stream') ~= op.head then
      verdict = -3  -- another decision of this port came first (this batch or another process): re-plan
    elseif op.suffix and (seen[op.suffix] or redis.call('EXISTS', base .. 'm:' .. op.suffix) == 1) then
      verdict = -1
    end
    ports_seen[op.port] = true
    if op.suffix then seen[op.suffix] = true end
  elseif op.kind == 'A' or op.kind == 'F' or op.kind == 'C' then
    if op.original and redis.call('EXISTS', base .. 'm:' .. op.original) == 0 and not seen[op.original] then
      verdict = -2
    elseif seen[op.suffix] or redis.call('EXISTS', base .. 'm:' .. op.suffix) == 1 then
      verdict = -1
    end
    seen[op.suffix] = true
  elseif op.kind == 'K' or op.kind == 'D' then
    for k, cursor in ipairs(op.cursors) do
      local owner = redis.call('HGET', base .. 'cursors', cursor)
      if not owner or string.sub(owner, 1, #op.recipient + 1) ~= op.recipient .. '\n' then
        verdict = k
        break
      end
    end
    if op.kind == 'D' and verdict == 0 then
      local cursor = op.cursors[1]
      local owner = redis.call('HGET', base .. 'cursors', cursor)
      local score = redis.call('ZSCORE', base .. 'i:' .. op.recipient, string.sub(owner, #op.recipient + 2))
      local state = base .. 'd:' .. cursor
      local last = redis.call('HGET', state, 'outcome')
      local attempts = tonumber(redis.call('HGET', state, 'attempts') or '0')
      if seen['d:' .. cursor] or not (score and tonumber(score) == tonumber(cursor))
          or (last and last ~= 'retry') or attempts ~= op.expect then
        verdict = -5  -- a stale attempt: its item's outcome was recorded meanwhile
      end
      seen['d:' .. cursor] = true
    end
  end
  if verdict ~= 0 then bad = true end
  verdicts[j] = verdict
end

if bad or expected ~= size then
  local reply = {'NO', size}
  for j = 1, n do reply[j + 2] = verdicts[j] end
  return reply
end

-- the item behind a cursor leaves the push queues (acknowledged, delivered)
local function unqueue(r, cursor)
  redis.call('ZREM', base .. 'q:' .. r, cursor)
  redis.call('ZREM', base .. 't:' .. r, cursor)
  redis.call('ZREM', base .. 'x:' .. r, cursor)
  redis.call('ZREM', base .. 'x', cursor)
end

local function sender_of(suffix)
  local length, rest = string.match(suffix, '^(%d+):(.*)$')
  return string.sub(rest, 1, tonumber(length))
end

-- a recall: the copies it reaches (gateway.core.forwarding.recalled_copies, step for step), each
-- unacknowledged inbox entry of them withdrawn; returns the holders and the withdrawn copies
local function withdraw(op)
  local root = redis.call('GET', base .. 'f:' .. op.original) or op.original
  local recaller = sender_of(op.suffix)
  local top = op.whole and root or op.original
  local below = {[top] = true}
  local taken = {}
  if op.whole or sender_of(top) == recaller then taken[top] = true end
  local tree = redis.call('LRANGE', base .. 'c:' .. root, 0, -1)
  for _, copy in ipairs(tree) do
    local parent = redis.call('GET', base .. 'p:' .. copy) or root
    if below[parent] then
      below[copy] = true
      if taken[parent] or sender_of(copy) == recaller then taken[copy] = true end
    end
  end
  table.insert(tree, 1, root)
  local copies = {}
  for _, copy in ipairs(tree) do
    if taken[copy] then copies[#copies + 1] = copy end
  end
  local holders = {}
  local at = ''
  local relays = '{}'  -- the recall's own remote recipients by peer: they get the peer's relay entry instead
  for k = 1, #op.fields, 2 do
    if op.fields[k] == 'received_at' then at = op.fields[k + 1] end
    if op.fields[k] == 'relays' then relays = op.fields[k + 1] end
  end
  local remote, peers = {}, {}
  for peer, members in pairs(cjson.decode(relays)) do
    peers[#peers + 1] = peer
    for _, r in ipairs(members) do remote[r] = true end
  end
  table.sort(peers)
  for _, r in ipairs(op.recipients) do holders[r] = true end
  local function take(copy, r)  -- withdraw the inbox entry of r (a member or a relay queue) of copy
    redis.call('HSET', base .. 's:' .. copy, 'w:' .. r, op.suffix)
    local cursor = redis.call('ZSCORE', base .. 'i:' .. r, copy)
    if cursor then
      redis.call('ZREM', base .. 'i:' .. r, copy)
      redis.call('HSET', base .. 's:' .. copy, 's:' .. r, at)
      unqueue(r, cursor)
    end
  end
  for _, copy in ipairs(copies) do
    local relayed = {}
    local copy_relays = redis.call('HGET', base .. 'm:' .. copy, 'relays')
    if copy_relays then  -- its relay entries are withdrawn; their remote recipients hold nothing here
      for peer, members in pairs(cjson.decode(copy_relays)) do
        for _, r in ipairs(members) do relayed[r] = true end
        take(copy, 'relay:' .. peer)
      end
    end
    for _, r in ipairs(cjson.decode(redis.call('HGET', base .. 'm:' .. copy, 'recipients'))) do
      if not relayed[r] then
        holders[r] = true
        take(copy, r)
      end
    end
  end
  holders[recaller] = nil  -- the recall's sender gets no entry
  local sorted = {}
  for r in pairs(holders) do
    if not remote[r] then sorted[#sorted + 1] = r end
  end
  table.sort(sorted)
  local targets = {}
  for _, r in ipairs(sorted) do targets[#targets + 1] = r end
  for _, peer in ipairs(peers) do targets[#targets + 1] = 'relay:' .. peer end
  return sorted, copies, targets
end

-- a message, its inbox entries and their push work (the message's own leaf is appended by the caller)
local function store_message(op)
  redis.call('HSET', base .. 'm:' .. op.suffix, unpack(op.fields))
  for _, r in ipairs(op.recipients) do
    local cursor = redis.call('INCR', base .. 'cursor')
    redis.call('ZADD', base .. 'i:' .. r, cursor, op.suffix)
    redis.call('HSET', base .. 'cursors', cursor, r .. '\n' .. op.suffix)
    redis.call('HSET', base .. 's:' .. op.suffix, 'c:' .. r, cursor)
    redis.call('ZADD', base .. 'q:' .. r, cursor, cursor)
    redis.call('SADD', base .. 'recipients', r)
  end
end

local reply = {'OK', size}
for j = 1, n do
  local op = ops[j]
  local result = 0
  if op.kind == 'C' then
    local holders, copies
    holders, copies, op.recipients = withdraw(op)
    result = {holders, copies}
  elseif op.kind == 'F' then
    local root = redis.call('GET', base .. 'f:' .. op.original) or op.original
    redis.call('SET', base .. 'f:' .. op.suffix, root)
    redis.call('SET', base .. 'p:' .. op.suffix, op.original)
    redis.call('RPUSH', base .. 'c:' .. root, op.suffix)
  end
  if op.kind == 'A' or op.kind == 'F' or op.kind == 'C' then
    store_message(op)
  elseif op.kind == 'P' then
    local key = base .. 'port:' .. op.port .. ':'
    for _, c in ipairs(op.changes) do  -- entry, standing field, standing, B/L, container
      redis.call('RPUSH', key .. 'stream', c[1])
      redis.call('HSET', key .. 'state', c[2], c[3])
      redis.call('SADD', key .. 'bl:' .. c[4], c[5])
      if c[5] ~= '' then redis.call('SADD', key .. 'cbl:' .. c[5], c[4]) end
    end
    redis.call('SADD', base .. 'port-applied', op.mark)
    if op.suffix then  -- the gate-out's alert, ledgered before the port_update
      store_message(op)
      redis.call('RPUSH', ledger, op.message_leaf)
    end
  elseif op.kind == 'K' then
    local inbox = base .. 'i:' .. op.recipient
    for _, cursor in ipairs(op.cursors) do
      local owner = redis.call('HGET', base .. 'cursors', cursor)
      local suffix = string.sub(owner, #op.recipient + 2)
      local score = redis.call('ZSCORE', inbox, suffix)
      if score and tonumber(score) == tonumber(cursor) then
        result = result + redis.call('ZREM', inbox, suffix)
        redis.call('HSET', base .. 's:' .. suffix, 's:' .. op.recipient, op.at)
        unqueue(op.recipient, cursor)
      end
    end
  elseif op.kind == 'D' then
    local cursor = op.cursors[1]
    local r = op.recipient
    local suffix = string.sub(redis.call('HGET', base .. 'cursors', cursor), #r + 2)
    local inbox = base .. 'i:' .. r
    local score = redis.call('ZSCORE', inbox, suffix)
    local outcome = op.outcome
    if not (score and tonumber(score) == tonumber(cursor)) then
      outcome = 'delivered'  -- acknowledged stays acknowledged
    end
    local state = base .. 'd:' .. cursor
    local attempts = redis.call('HINCRBY', state, 'attempts', 1)
    redis.call('HSET', state, 'recipient', r, 'outcome', outcome, 'status', op.status, 'updated_at', op.at,
               'next_at', outcome == 'retry' and op.next_at or '', 'code', op.code)
    unqueue(r, cursor)
    if outcome == 'delivered' then
      if op.receipt ~= '' then redis.call('HSET', state, 'receipt', op.receipt) end
      if redis.call('ZREM', inbox, suffix) == 1 then
        redis.call('HSET', base .. 's:' .. suffix, 's:' .. r, op.at)
      end
    elseif outcome == 'retry' then
      redis.call('ZADD', base .. 't:' .. r, op.next_at, cursor)
    else
      redis.call('ZADD', base .. 'x:' .. r, cursor, cursor)
      redis.call('ZADD', base .. 'x', cursor, cursor)
    end
    result = {attempts, outcome, suffix}
  elseif op.kind == 'V' then
    for _, cursor in ipairs(op.cursors) do
      if redis.call('ZREM', base .. 'x', cursor) == 1 then
        local state = base .. 'd:' .. cursor
        local r = redis.call('HGET', state, 'recipient')
        redis.call('ZREM', base .. 'x:' .. r, cursor)
        redis.call('HSET', state, 'attempts', 0, 'outcome', 'retry', 'updated_at', op.at, 'next_at', '')
        redis.call('ZADD', base .. 'q:' .. r, cursor, cursor)
        result = result + 1
      end
    end
  end
  redis.call('RPUSH', ledger, op.leaf)
  reply[j + 2] = result
end
return reply
"""

# ARGV: B, recipient, after, limit. Reply: flat {cursor, suffix, n, field, value, ... (n items), cursor, ...}: for
# each unacknowledged item with cursor > after (oldest first, at most limit) its cursor, message suffix and
# message hash. One script, so one consistent snapshot.
PULL = r"""
local base = ARGV[1]
local items = redis.call('ZRANGEBYSCORE', base .. 'i:' .. ARGV[2], '(' .. ARGV[3], '+inf',
                         'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))
local reply = {}
for k = 1, #items, 2 do
  local fields = redis.call('HGETALL', base .. 'm:' .. items[k])
  reply[#reply + 1] = items[k + 1]
  reply[#reply + 1] = items[k]
  reply[#reply + 1] = #fields
  for _, v in ipairs(fields) do reply[#reply + 1] = v end
end
return reply
"""

# ARGV: B, recipient, now (microseconds), limit, retry scan bound. Reply: flat items as PULL, each message hash
# followed by one more pair "attempts", n. Due push work: new and redriven items (q:) merged with retries due by
# now (t:, at most the scan bound), oldest cursor first.
DUE = r"""
local base = ARGV[1]
local r = ARGV[2]
local limit = tonumber(ARGV[4])
local cursors = redis.call('ZRANGE', base .. 'q:' .. r, 0, limit - 1)
for _, c in ipairs(redis.call('ZRANGEBYSCORE', base .. 't:' .. r, '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[5]))) do
  cursors[#cursors + 1] = c
end
table.sort(cursors, function(a, b) return tonumber(a) < tonumber(b) end)
local reply = {}
for k = 1, math.min(limit, #cursors) do
  local cursor = cursors[k]
  local suffix = string.sub(redis.call('HGET', base .. 'cursors', cursor), #r + 2)
  local fields = redis.call('HGETALL', base .. 'm:' .. suffix)
  fields[#fields + 1] = 'attempts'
  fields[#fields + 1] = redis.call('HGET', base .. 'd:' .. cursor, 'attempts') or '0'
  reply[#reply + 1] = cursor
  reply[#reply + 1] = suffix
  reply[#reply + 1] = #fields
  for _, v in ipairs(fields) do reply[#reply + 1] = v end
end
return reply
"""

# ARGV: B, recipient ("" for everyone), after, limit. Reply: flat {cursor, owner, n, field, value, ...}: dead
# letters with cursor > after, oldest first; owner is the cursors-hash value (recipient "\n" suffix).
DEAD = r"""
local base = ARGV[1]
local key = ARGV[2] == '' and base .. 'x' or base .. 'x:' .. ARGV[2]
local reply = {}
for _, cursor in ipairs(redis.call('ZRANGEBYSCORE', key, '(' .. ARGV[3], '+inf', 'LIMIT', 0, tonumber(ARGV[4]))) do
  local fields = redis.call('HGETALL', base .. 'd:' .. cursor)
  reply[#reply + 1] = cursor
  reply[#reply + 1] = redis.call('HGET', base .. 'cursors', cursor)
  reply[#reply + 1] = #fields
  for _, v in ipairs(fields) do reply[#reply + 1] = v end
end
return reply
"""

# ARGV: B. Reply: flat {recipient, unacknowledged count, ...} for recipients with a non-empty inbox.
DEPTHS = r"""
local base = ARGV[1]
local reply = {}
for _, r in ipairs(redis.call('SMEMBERS', base .. 'recipients')) do
  local n = redis.call('ZCARD', base .. 'i:' .. r)
  if n > 0 then
    reply[#reply + 1] = r
    reply[#reply + 1] = n
  end
end
return reply
"""

# ARGV: B, suffix. Reply: flat {0, suffix, n, field, value, ...} for the message and then each of its forwards
# (acceptance order); empty when the message is unknown.
COPIES = r"""
local base = ARGV[1]
if redis.call('EXISTS', base .. 'm:' .. ARGV[2]) == 0 then return {} end
local keys = redis.call('LRANGE', base .. 'c:' .. ARGV[2], 0, -1)
table.insert(keys, 1, ARGV[2])
local reply = {}
for _, key in ipairs(keys) do
  local fields = redis.call('HGETALL', base .. 'm:' .. key)
  reply[#reply + 1] = 0
  reply[#reply + 1] = key
  reply[#reply + 1] = #fields
  for _, v in ipairs(fields) do reply[#reply + 1] = v end
end
return reply
"""

# ARGV: B, suffix. Reply: {} when the message is unknown, else {n, field, value, ... (its s: hash), then per
# recipient (each "c:" field of s:, and each of the message's recipients): recipient, cursor (0: not known),
# "1" if still in the inbox else "0", n, field, value, ... (its d: hash)}. A message stored before the s: hash
# existed has none: its waiting entries are found by their score in each recipient's inbox. A message with relay
# entries adds the pair "relays", its message field, to the s: pairs and leaves its remote recipients out.
STATES = r"""
local base = ARGV[1]
local key = ARGV[2]
local recipients = redis.call('HGET', base .. 'm:' .. key, 'recipients')
if not recipients then return {} end
local state = redis.call('HGETALL', base .. 's:' .. key)
local members, seen = {}, {}
local relays = redis.call('HGET', base .. 'm:' .. key, 'relays')
if relays then  -- remote recipients are reported with their relay entry (by the caller)
  for _, remote in pairs(cjson.decode(relays)) do
    for _, r in ipairs(remote) do seen[r] = true end
  end
  state[#state + 1] = 'relays'; state[#state + 1] = relays
end
local reply = {#state}
for k = 1, #state, 2 do
  reply[#reply + 1] = state[k]; reply[#reply + 1] = state[k + 1]
  if string.sub(state[k], 1, 2) == 'c:' then members[#members + 1] = string.sub(state[k], 3) end
end
for _, r in ipairs(cjson.decode(recipients)) do members[#members + 1] = r end
for _, r in ipairs(members) do
  if not seen[r] then
    seen[r] = true
    local cursor = redis.call('HGET', base .. 's:' .. key, 'c:' .. r)
    local score = redis.call('ZSCORE', base .. 'i:' .. r, key)
    local fields = cursor and redis.call('HGETALL', base .. 'd:' .. cursor) or {}
    reply[#reply + 1] = r
    reply[#reply + 1] = cursor or score or '0'
    reply[#reply + 1] = score and '1' or '0'
    reply[#reply + 1] = #fields
    for _, v in ipairs(fields) do reply[#reply + 1] = v end
  end
end
return reply
"""
