"""Layouts of the risk layer's small arrays (constants only; compile-time constants for numba).

The risk parameters travel as a table ``(regimes, N_RISK)``: row 0 holds the base values, one
more row per regime with overrides; a per-bar ``regime_row`` array picks the row in force.
"""

# -- risk parameter columns (NaN = rule off) --------------------------------------------------
R_ENABLED = 0  # 0.0: the whole layer is off and the engine behaves exactly as without it
R_MAX_POSITION = 1  # max |weight| per asset
R_MAX_GROSS = 2  # max sum |weight|
R_MAX_NET = 3  # max |sum weight|
R_MAX_POSITIONS = 4  # max count of non-zero weights (largest |weight| kept)
R_CASH_BUFFER = 5  # gross <= 1 - buffer
R_MAX_GROUP = 6  # max sum |weight| per group
R_STOP_KIND = 7  # STOP_* below
R_STOP_PCT = 8
R_ATR_MULT = 9
R_TAKE_PROFIT = 10
R_TIME_STOP = 11  # bars held
R_DAILY_LOSS = 12
R_DAILY_FLATTEN = 13
R_MAX_DRAWDOWN = 14
R_DRAWDOWN_ACTION = 15  # BREAKER_* state it trips to
R_MAX_LOSSES = 16
R_LOSSES_ACTION = 17
R_COOLDOWN = 18  # bars
R_CALENDAR = 19  # 1.0: changes only on the first bar of a period (exits always)
R_DRIFT = 20  # changes only when |current weight - target| > drift (exits always)
R_MIN_TRADE_VALUE = 21
R_MAX_TRADES = 22
R_SIZING = 23  # SIZING_* below
R_SIZING_FRACTION = 24  # fixed fraction / Kelly fraction
R_TARGET_VOL = 25  # annual
R_VOL_WINDOW = 26
R_PERIODS_PER_YEAR = 27
R_SIZING_CAP = 28  # max |weight| a sizing rule may produce
R_KELLY_WIN_RATE = 29  # NaN: rolling closed-trade statistics
R_KELLY_PAYOFF = 30
R_KELLY_MIN_TRADES = 31
R_RISK_PER_TRADE = 32
R_ATR_RISK_MULT = 33
N_RISK = 34

STOP_NONE = 0
STOP_FIXED = 1
STOP_TRAILING = 2
STOP_ATR = 3

SIZING_NONE = 0
SIZING_FIXED = 1
SIZING_VOL = 2
SIZING_KELLY = 3
SIZING_ATR = 4

BREAKER_ACTIVE = 0
BREAKER_REDUCING = 1
BREAKER_HALTED = 2

# -- per-asset state rows -----------------------------------------------------------------------
S_ENTRY_PRICE = 0  # average entry fill price of the open position
S_ENTRY_BAR = 1
S_EXTREME = 2  # highest high (long) / lowest low (short) since entry, for trailing stops
S_ENTRY_ATR = 3  # ATR known when the position opened
S_TRADE_CASH = 4  # cash flow of the open round trip (realized P&L when it closes)
S_STOPPED = 5  # 1.0: exited by a risk rule; stays flat until the target changes
S_REASON = 6  # exit reason of the asset's pending order (REASON_*)
S_LAST_RAW = 7  # last raw (strategy) target seen
S_STOP_RAW = 8  # raw target when the risk exit happened: re-entry waits for a different one
N_ASSET_STATE = 9

# -- portfolio state scalars --------------------------------------------------------------------
G_BREAKER = 0
G_BREAKER_UNTIL = 1
G_PEAK = 2
G_SESSION = 3
G_SESSION_EQUITY = 4
G_LOCK_SESSION = 5  # session whose decisions may not add risk (daily loss limit), -1 none
G_LAST_EQUITY = 6
G_CONSECUTIVE = 7
G_WINS = 8
G_LOSSES = 9
G_SUM_WIN = 10
G_SUM_LOSS = 11
G_EVENTS = 12  # events counted (recorded while the buffers have room)
G_FLATTEN = 13  # reason code of a flatten a breaker/limit asked for at the next fill (0: none)
G_QUIET = 14  # 1.0: the last decision accepted and held back nothing (see skip_decision_nb)
N_GLOBAL_STATE = 15

# -- event record columns -----------------------------------------------------------------------
E_BAR = 0  # int columns
E_ASSET = 1  # -1: the whole portfolio
E_RULE = 2
E_BEFORE = 0  # float columns
E_AFTER = 1
E_DETAIL = 2

# -- exit / order reasons (fills) ---------------------------------------------------------------
REASON_SIGNAL = 0
REASON_STOP_LOSS = 1
REASON_TRAILING_STOP = 2
REASON_ATR_STOP = 3
REASON_TAKE_PROFIT = 4
REASON_TIME_STOP = 5
REASON_BREAKER = 6
REASON_DAILY_LOSS = 7

# -- rule ids (events) --------------------------------------------------------------------------
RULE_SIZING = 0
RULE_MAX_POSITION = 1
RULE_MAX_GROUP = 2
RULE_MAX_POSITIONS = 3
RULE_MAX_NET = 4
RULE_MAX_GROSS = 5
RULE_STOP_LOSS = 6
RULE_TRAILING_STOP = 7
RULE_ATR_STOP = 8
RULE_TAKE_PROFIT = 9
RULE_TIME_STOP = 10
RULE_DRAWDOWN_BREAKER = 11
RULE_LOSSES_BREAKER = 12
RULE_BREAKER_RESUME = 13
RULE_BREAKER_BLOCK = 14
RULE_DAILY_LOSS = 15
RULE_DAILY_BLOCK = 16
RULE_CALENDAR = 17
RULE_DRIFT = 18
RULE_MIN_TRADE = 19
RULE_MAX_TRADES = 20
N_RULES = 21
