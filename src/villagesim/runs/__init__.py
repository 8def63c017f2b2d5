"""Running scenarios: replicates (:mod:`.runner`), results folders (:mod:`.folder`), where runs
execute (:mod:`.backends`: serial, process pool, Dask) and their statistics (:mod:`.stats`)."""
