"""Long-lived objects out of the cyclic garbage collector's way in server processes."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Move everything alive now (modules, the app, its routes and tables: ~200,000 objects)
    to the collector's permanent generation, as a server should once it is built.

    Each full collection otherwise walks them all again, and allocation-heavy requests (an
    export page of 5,000 users, a 150-object /users/track) trigger one every few pages:
    measured, a segment export of external ids spent half its time in the collector.
    Frozen objects are still freed when nothing refers to them; only cycles among them are
    no longer looked for, and none are expected among objects that live as long as the process.
    """
    gc.collect()
    gc.freeze()
