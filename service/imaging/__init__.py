"""Pure image work: the bytes of an upload become pixels (`decode`), the pixels become
MNIST samples (`ink` finds the ink against its background, `components` keeps the digit,
`mnist` crops, fits and centres it). No web framework, no metrics, no I/O."""
