"""Experiments over many runs: experiment files and designs (:mod:`.design`), paired
comparisons (:mod:`.compare`), resumable sweeps (:mod:`.sweep`) and their analysis
(:mod:`.analysis`: sensitivity indices, scenario discovery)."""
