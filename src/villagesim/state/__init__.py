"""The model's state: the person table and villages (:mod:`.population`), and the
institutions' treasury, facilities, NGO reach and time-bank totals (:mod:`.institutions`).
State holds data and the rules that only read or book it; the processes change it."""
