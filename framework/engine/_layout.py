"""Layouts of the small arrays the jitted kernels pass around (constants only).

Module-level integers are compile-time constants for numba, so named indexes cost nothing.
"""

# -- parameter vector layout (module constants are compile-time constants for numba) ----------
P_INITIAL_CASH = 0
P_FILL_CLOSE = 1  # 1.0: fill target[i] at close[i]; 0.0: at open[i + 1]
P_EVERY_BAR = 2  # 1.0: re-size every bar; 0.0: only when the target changes
P_WHOLE_SHARES = 3
P_ALLOW_SHORT = 4
P_MAX_LEVERAGE = 5
P_PER_SHARE = 6  # commission, currency per share
P_MIN_COMMISSION = 7  # currency per fill
P_COMMISSION_RATE = 8  # fraction of traded value
P_COMMISSION_CAP = 9  # fraction of traded value, NaN = no cap
P_SLIPPAGE = 10  # fraction of price
P_IMPACT_COEF = 11
P_IMPACT_WINDOW = 12
P_MAX_PARTICIPATION = 13  # fraction of bar volume, NaN = no cap
N_PARAMS = 14

# -- totals vector layout ---------------------------------------------------------------------
T_COMMISSION = 0
T_SLIPPAGE = 1
T_IMPACT = 2
T_FILLS = 3
T_IMPACT_SKIPPED = 4
T_TRADED_VALUE = 5
T_BARS_IN_MARKET = 6
N_TOTALS = 7

# -- account vector layout: cash and the long/short position values at the current fill prices -
A_CASH = 0
A_LONG = 1
A_SHORT = 2

# orders smaller than this fraction of the position are float noise, not trades
ORDER_DUST = 1e-9
# halvings of [0, 1] when searching the exposure scale: below double precision of the factor
BISECTION_STEPS = 60

# -- per-order detail rows, filled when a bar's orders are executed ------------------------------
D_SIGMA = 0  # impact volatility
D_FRACTION = 1  # slippage + impact at the full order size
D_CLOSING = 2  # shares that reduce the current position
D_OPENING = 3  # shares that add exposure
D_SHARES = 4  # shares to fill after the leverage rule (orders that add exposure)
N_DETAIL = 5

# -- fill record columns ----------------------------------------------------------------------
F_BAR = 0  # int columns
F_ASSET = 1
F_REASON = 2  # exit reason code of the risk layer (0 = signal)
N_FILL_INT = 3
F_QTY = 0  # float columns
F_PRICE = 1
F_COMMISSION = 2
F_SLIPPAGE = 3
F_IMPACT = 4
