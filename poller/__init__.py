"""timeman-poller: keep every Bitrix24 employee's work-time status as history in SQL."""

__version__ = "0.1.0"
