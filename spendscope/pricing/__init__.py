"""spendscope.pricing: the versioned OpenAI price table and the pure pricing engine.

Pure: imports none of spendscope's other packages and does no I/O at import; the bundled data
file is read on the first ``PriceTable.default()``.
"""

from spendscope.pricing.engine import price_usage, split_usage
from spendscope.pricing.loading import PriceDataError
from spendscope.pricing.model import Priced, PriceRow, Usage, money_str
from spendscope.pricing.table import PriceTable, normalize_tier

__all__ = [
    "PriceDataError",
    "PriceRow",
    "PriceTable",
    "Priced",
    "Usage",
    "money_str",
    "normalize_tier",
    "price_usage",
    "split_usage",
]
