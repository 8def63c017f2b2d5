"""What a run reports: the output columns (:mod:`.columns`), the per-village sums of a step
(:mod:`.sums`), the recorder of a run (:mod:`.recorder`) and the figures (:mod:`.figures`)."""
