"""The browser page (Solara): layout and callbacks (:mod:`.page`), the session state behind it
(:mod:`.session`) and its figures (:mod:`.figures`). Served by ``villagesim app``."""
