"""Job handlers: classes with an ``execute(**kwargs)`` method, found by registered name."""

from f8a_jobs_worker.handlers.base import BaseHandler, HandlerContext
from f8a_jobs_worker.handlers.registry import ENTRY_POINT_GROUP, HandlerRegistry

__all__ = ["ENTRY_POINT_GROUP", "BaseHandler", "HandlerContext", "HandlerRegistry"]
