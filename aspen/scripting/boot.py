"""The Lua side of the engine: the sandbox, the `redis` table, the error handler and the
instruction budget (run once per Lua state; see engine.py)."""

BOOT = r'''
-- Aspen's Lua bootstrap: run once per Lua state (chunkname "=aspen").
--
-- It keeps private references to everything a script may use and hands back the functions
-- the Python side drives. Scripts never see the real tables:
-- every run gets a fresh environment whose library tables are fresh read-only proxies, so no
-- script can leave state behind for a later one (every replica must compute the same thing,
-- including one restored from a snapshot that never ran the earlier scripts).
local host = ...

local type, tostring, error, pairs, next, select, unpack = type, tostring, error, pairs, next,
    select, unpack
local rawget, rawset, rawequal, setmetatable, getmetatable = rawget, rawset, rawequal,
    setmetatable, getmetatable
local pcall, xpcall, assert, tonumber, ipairs = pcall, xpcall, assert, tonumber, ipairs
local setfenv, loadstring, load = setfenv, loadstring, load
local string, math, table, coroutine = string, math, table, coroutine
local floor = math.floor
local dgetinfo, dsethook = debug.getinfo, debug.sethook
local VERSION = _VERSION

local libs = host.libs -- cjson, bit, struct, cmsgpack (tables of functions)
local REDIS_VERSION, REDIS_VERSION_NUM = host.version, host.version_num

-- The real globals table stays as it is (lupa itself uses it), unreachable from scripts: they
-- have no getfenv, and chunks from loadstring/load get the run's environment.
-- ("x"):upper() keeps working; getmetatable("") no longer hands out the real string table
local strmeta = getmetatable("")
strmeta.__metatable = false

local function nonexistent(k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 3)
end

local function readonly_error() error("Attempt to modify a readonly table", 2) end

local function readonly(real)
    return setmetatable({}, {__index = real, __newindex = readonly_error, __metatable = false})
end

-- ------------------------------------------------------------------ the run's state
local run = {
    budget = 0,      -- instructions allowed
    used = 0,        -- instructions counted so far (in steps of STEP)
    exceeded = false,
    stop = nil,      -- the error every instruction raises once the run is stopped
    check = nil,     -- a local read-only run: host function, true once SCRIPT KILL asked
    checks = 0,      -- hooks since the last check
    env = nil,
    ids = nil,       -- object -> number, for tostring
    next_id = 0,
}
local STEP = host.step

local budget_message = "ERR Script exceeded its budget of Lua instructions"
local killed_message = "ERR Script killed by user with SCRIPT KILL..."
-- a killable run asks the host every CHECK_EVERY hooks (CHECK_EVERY * STEP instructions,
-- well under a millisecond): each ask is a call into Python, which takes the GIL
local CHECK_EVERY = 32
local hook
local function stop_run(message)
    run.exceeded = true
    run.stop = message
    -- raise on every instruction from now on: a pcall in the script cannot swallow it
    dsethook(hook, "", 1)
    error({err = message})
end
hook = function()
    if run.exceeded then
        -- only in script code: never inside the bootstrap (its error handler, its epilogue)
        local i = dgetinfo(2, "S")
        if i and i.source == "=aspen" then return end
        error({err = run.stop})
    end
    local used = run.used + STEP
    run.used = used
    if used > run.budget then
        stop_run(budget_message .. " (" .. run.budget .. ")")
    end
    local check = run.check
    if check then
        local n = run.checks + 1
        if n >= CHECK_EVERY then
            n = 0
            if check() then stop_run(killed_message) end
        end
        run.checks = n
    end
end

-- ------------------------------------------------------------------ the error handler
-- Every error becomes a table {err=..., source=..., line=...}: the line of the first frame
-- that is script code (not a C function, not this bootstrap).
local function error_handler(e)
    local level, info = 2, nil
    while true do
        local i = dgetinfo(level, "Sl")
        if not i then break end
        if i.what ~= "C" and i.source ~= "=aspen" then
            info = i
            break
        end
        level = level + 1
    end
    if type(e) == "userdata" then
        local ok, m = pcall(function() return e.err end) -- a failed redis.call
        if ok and type(m) == "string" then
            e = {err = m}
        else
            ok, m = pcall(function() return e.lib_message end) -- a library's error
            if ok and type(m) == "string" then
                local where = ""
                if info then where = info.short_src .. ":" .. info.currentline .. ": " end
                e = {err = "ERR " .. where .. m}
            else
                e = {err = "ERR " .. tostring(e)}
            end
        end
    elseif type(e) ~= "table" then
        e = {err = "ERR " .. tostring(e)}
    elseif type(rawget(e, "err")) ~= "string" then
        e = {err = "ERR " .. tostring(rawget(e, "err"))}
    end
    if info then
        e.source = info.source
        e.line = info.currentline
    end
    return e
end

-- ------------------------------------------------------------------ replacements
local function det_tostring(v)
    local t = type(v)
    if t == "table" or t == "function" or t == "userdata" or t == "thread" then
        local mt = getmetatable(v)
        if t == "table" and type(mt) == "table" and rawget(mt, "__tostring") then
            return tostring(v)
        end
        -- an address differs between replicas: number objects in order of first sight
        local ids = run.ids
        if not ids then
            ids = setmetatable({}, {__mode = "k"})
            run.ids = ids
        end
        local id = ids[v]
        if not id then
            run.next_id = run.next_id + 1
            id = run.next_id
            ids[v] = id
        end
        return string.format("%s: 0x%08x", t, id)
    end
    return tostring(v)
end

local function collect(opt)
    -- memory figures differ between replicas; nothing a script can depend on
    if opt == "count" or opt == "step" then return 0 end
    return 0
end

local function checked_chunk(f, msg)
    if f then setfenv(f, run.env) end
    return f, msg
end

local function safe_loadstring(s, name)
    if type(s) == "string" and s:byte(1) == 27 then
        return nil, "attempt to load a binary chunk"
    end
    return checked_chunk(loadstring(s, name))
end

local function safe_load(fn, name)
    local parts = {}
    while true do
        local piece = fn()
        if piece == nil or piece == "" then break end
        if type(piece) ~= "string" then return nil, "reader function must return a string" end
        parts[#parts + 1] = piece
    end
    return safe_loadstring(table.concat(parts), name)
end

local co_create, co_wrap = coroutine.create, coroutine.wrap
local function hooked_create(f)
    local co = co_create(f)
    dsethook(co, hook, "", STEP) -- hooks are per thread: the budget covers coroutines too
    return co
end
local coroutine_x = {}
for k, v in pairs(coroutine) do coroutine_x[k] = v end
coroutine_x.create = hooked_create
coroutine_x.wrap = function(f)
    local co = hooked_create(f)
    return function(...)
        local r = {coroutine.resume(co, ...)}
        if not r[1] then error(r[2], 0) end
        return unpack(r, 2)
    end
end

-- string.rep builds its result in C, out of the hook's sight: charge the budget one
-- instruction per byte of the result first, so a huge string cannot stall the node.
local function charge(cost)
    local used = run.used + cost
    run.used = used
    if used > run.budget then
        stop_run(budget_message .. " (" .. run.budget .. ")")
    end
end
local string_x = {}
for k, v in pairs(string) do string_x[k] = v end
local srep = string.rep
string_x.rep = function(s, n, ...)
    local len = type(s) == "number" and #tostring(s) or (type(s) == "string" and #s or 0)
    local times = tonumber(n) or 0
    if len > 0 and times > 0 then charge(len * times) end
    return srep(s, n, ...)
end
strmeta.__index = string_x -- ("x"):rep(n) is charged too

local math_x = {}
for k, v in pairs(math) do math_x[k] = v end
local pyrandom, pyrandomseed = host.random, host.randomseed
math_x.random = function(m, n)
    local r = pyrandom()
    if m == nil then return r end
    if n == nil then
        m = floor(m)
        if m < 1 then error("bad argument #1 to 'random' (interval is empty)", 2) end
        return floor(r * m) + 1
    end
    m, n = floor(m), floor(n)
    if m > n then error("bad argument #2 to 'random' (interval is empty)", 2) end
    return floor(r * (n - m + 1)) + m
end
math_x.randomseed = function(s) pyrandomseed(s) end

-- ------------------------------------------------------------------ the redis table
local resp = {v = 2}
local pysetresp = host.setresp

-- redis.call and redis.pcall are the Python callables themselves: a C function keeps the
-- script's frame (and its line number) even in `return redis.call(...)`. redis.call raises a
-- Python exception whose `err` field the error handler reads.
local redis = {}
redis.call = host.call
redis.pcall = host.pcall
redis.error_reply = function(msg)
    if type(msg) ~= "string" then
        error({err = "ERR wrong number or type of arguments"})
    end
    if msg:sub(1, 1) == "-" then msg = msg:sub(2) end
    if not msg:find(" ", 1, true) then msg = "ERR " .. msg end -- no code: ERR
    return {err = msg}
end
redis.status_reply = function(msg)
    if type(msg) ~= "string" then
        error({err = "ERR wrong number or type of arguments"})
    end
    return {ok = msg}
end
redis.sha1hex = function(...)
    if select("#", ...) ~= 1 then
        error({err = "ERR wrong number of arguments"})
    end
    local s = ...
    if type(s) ~= "string" and type(s) ~= "number" then s = "" end
    return host.sha1hex(tostring(s))
end
redis.log = function(level, ...)
    if select("#", ...) < 1 then
        error({err = "ERR redis.log() requires two arguments or more."})
    end
    if type(level) ~= "number" then
        error({err = "ERR First argument must be a number (log level)."})
    end
    if level < 0 or level > 3 then
        error({err = "ERR Invalid debug level."})
    end
    host.log(level, table.concat({...}, " "))
end
redis.setresp = function(...)
    if select("#", ...) ~= 1 then
        error({err = "ERR redis.setresp() requires one argument."})
    end
    local v = ...
    if v ~= 2 and v ~= 3 then
        error({err = "ERR RESP version must be 2 or 3."})
    end
    resp.v = v
    pysetresp(v)
end
redis.set_repl = function(...)
    if select("#", ...) ~= 1 then
        error({err = "ERR redis.set_repl() requires one argument."})
    end
    local v = ...
    if type(v) ~= "number" or v < 0 or v > 3 or floor(v) ~= v then
        error({err = "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or "
            .. "REPL_NONE."})
    end
    -- accepted: a script's effects always travel as the script itself through the Raft log
end
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL =
    0, 1, 2, 2, 3
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = REDIS_VERSION, REDIS_VERSION_NUM

-- what FUNCTION LOAD's library code sees while it registers (no redis.call at load time)
local loading = nil
local redis_load = {
    log = redis.log,
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REDIS_VERSION = REDIS_VERSION, REDIS_VERSION_NUM = REDIS_VERSION_NUM,
}
redis_load.register_function = function(...)
    if not loading then
        error({err = "ERR redis.register_function can only be called on FUNCTION LOAD command"})
    end
    local n = select("#", ...)
    local name, callback, flags, description
    if n == 1 and type((...)) == "table" then
        local t = ...
        for k, v in pairs(t) do
            if k == "function_name" then name = v
            elseif k == "callback" then callback = v
            elseif k == "flags" then flags = v
            elseif k == "description" then description = v
            else
                error({err = "ERR unknown argument given to redis.register_function"})
            end
        end
        if name == nil then
            error({err = "ERR redis.register_function must get a function name argument"})
        end
        if callback == nil then
            error({err = "ERR redis.register_function must get a callback argument"})
        end
    elseif n == 2 then
        name, callback = ...
    else
        error({err = "ERR wrong number of arguments to redis.register_function"})
    end
    if type(name) ~= "string" then
        error({err = "ERR function_name argument given to redis.register_function must be "
            .. "a string"})
    end
    if type(callback) ~= "function" then
        error({err = "ERR callback argument given to redis.register_function must be a function"})
    end
    if description ~= nil and type(description) ~= "string" then
        error({err = "ERR description argument given to redis.register_function must be a string"})
    end
    local flag_list = {}
    if flags ~= nil then
        if type(flags) ~= "table" then
            error({err = "ERR flags argument to redis.register_function must be a table "
                .. "representing function flags"})
        end
        for _, f in ipairs(flags) do
            if type(f) ~= "string" then
                error({err = "ERR unknown flag given"})
            end
            flag_list[#flag_list + 1] = f
        end
    end
    local err = host.register(loading, name, flag_list, description)
    if err then error({err = err}) end
    loading.callbacks[name] = callback
end

local strict_load_redis = setmetatable({}, {
    __index = function(_, k)
        local v = redis_load[k]
        if v == nil then
            nonexistent(k)
        end
        return v
    end,
    __newindex = readonly_error,
    __metatable = false,
})

-- Redis 7.0's pcall hands back an error's text, not its table: {err=...} and a failed
-- redis.call become the message string.
local function error_text(e)
    local t = type(e)
    if t == "table" and type(rawget(e, "err")) == "string" then return rawget(e, "err") end
    if t == "userdata" then
        local ok, m = pcall(function() return e.err end)
        if ok and type(m) == "string" then return m end
        ok, m = pcall(function() return e.lib_message end)
        if ok and type(m) == "string" then return m end
    end
    return e
end

local function pack_n(...)
    return {n = select("#", ...), ...}
end

local function redis_pcall(f, ...)
    local r = pack_n(pcall(f, ...))
    if not r[1] then r[2] = error_text(r[2]) end
    return unpack(r, 1, r.n)
end

-- ------------------------------------------------------------------ environments
local base = {
    xpcall = xpcall, tostring = det_tostring, setmetatable = setmetatable, next = next,
    assert = assert, tonumber = tonumber, rawequal = rawequal, collectgarbage = collect,
    getmetatable = getmetatable, rawset = rawset, pcall = redis_pcall, type = type,
    select = select,
    unpack = unpack, gcinfo = function() return 0 end, pairs = pairs,
    loadstring = safe_loadstring, ipairs = ipairs, error = error, rawget = rawget,
    load = safe_load, _VERSION = VERSION,
}
local lib_reals = {
    string = string_x, math = math_x, table = table, coroutine = coroutine_x,
    cjson = libs.cjson, bit = libs.bit, struct = libs.struct, cmsgpack = libs.cmsgpack,
}

local function new_env(extra, redis_table)
    local proxies = {}
    local env = {}
    local function lookup(_, k)
        if type(redis_table) == "function" and loading then
            -- a library's code while it loads sees only a restricted redis table
            if k == "redis" then return strict_load_redis end
            nonexistent(k)
        end
        local v = extra and extra[k]
        if v ~= nil then return v end
        v = proxies[k]
        if v ~= nil then return v end
        local real = lib_reals[k]
        if real ~= nil then
            v = readonly(real)
            proxies[k] = v
            return v
        end
        if k == "redis" then
            v = readonly(type(redis_table) == "function" and redis_table() or redis_table)
            proxies[k] = v
            return v
        end
        if k == "_G" then return env end
        v = base[k]
        if v == nil then
            nonexistent(k)
        end
        return v
    end
    setmetatable(env, {__index = lookup, __newindex = readonly_error, __metatable = false})
    return env
end

local function start(budget, check)
    run.budget = budget
    run.used = 0
    run.exceeded = false
    run.stop = nil
    run.check = check
    run.checks = 0
    run.ids = nil -- made on the first tostring of a table
    run.next_id = 0
    resp.v = 2 -- (the Python side starts each run at 2 too)
    dsethook(hook, "", STEP)
end

local function stop()
    dsethook()
    run.check = nil
    run.env = nil
    run.ids = nil
end

-- ------------------------------------------------------------------ entry points
local M = {}

-- compile(body, chunkname) -> function | nil, message
function M.compile(body, chunkname)
    return loadstring(body, chunkname)
end

-- eval(fn, keys, argv, budget, check) -> ok, value, used, exceeded (check: see `run`)
function M.eval(fn, keys, argv, budget, check)
    local env = new_env(nil, redis)
    rawset(env, "KEYS", keys) -- real fields of the globals table, as in Redis
    rawset(env, "ARGV", argv)
    run.env = env
    setfenv(fn, env)
    start(budget, check)
    local ok, r = xpcall(fn, error_handler)
    local used, exceeded = run.used, run.exceeded
    stop()
    return ok, r, used, exceeded
end

-- load_library(fn, lib, budget) -> ok, value: runs library code that registers functions
function M.load_library(fn, lib, budget)
    local env = new_env(nil, function() return redis end)
    lib.callbacks = {}
    lib.env = env
    loading = lib
    run.env = env
    setfenv(fn, env)
    start(budget)
    local ok, r = xpcall(fn, error_handler)
    stop()
    loading = nil
    return ok, r
end

-- fcall(lib, name, keys, args, budget, check) -> ok, value, used, exceeded
function M.fcall(lib, name, keys, args, budget, check)
    local cb = lib.callbacks[name]
    run.env = lib.env
    start(budget, check)
    local ok, r = xpcall(function() return cb(keys, args) end, error_handler)
    local used, exceeded = run.used, run.exceeded
    stop()
    return ok, r, used, exceeded
end

-- the budget ran out in a redis.call (the Python side counts calls): stop like the hook does
function M.exceed()
    local message = budget_message .. " (" .. run.budget .. ")"
    run.exceeded = true
    run.stop = message
    dsethook(hook, "", 1)
    return message
end

M.rawget = rawget
M.next = next

return M
'''
