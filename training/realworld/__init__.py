"""The real-world evaluation: uploads of the kinds people send (`uploads`), read the way the
service reads them, and a model's accuracy on each kind (`evaluation`)."""
