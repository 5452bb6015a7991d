"""Every notebook: what all parts of the course share.

config       every notebook: seeds, device, CPU threads, SCALE, headless detection (``setup``)
validate     every notebook: argument checks with clear errors
data         notebooks 00, 02-11: offline datasets and real MNIST/CIFAR-10 loaders
activations  notebooks 01-09: elementwise and isotropic activation functions
ops          notebooks 00-09: small tensor operations (``unit_rows``)
train        notebooks 00, 03-09, 11, 13: the one training loop (``fit``, ``train_epoch``, ``evaluate``, ...)
plots        every notebook: the shared style and shared figures
widgets      notebooks 00-04, 07, 10, 13: interactive figures that also render statically when headless
coursemap    notebook 00: the course map, notebook -> title -> the subpackage behind it
checks       notebook 00: the exercise check for ``unit_rows``
init         notebooks 00, 10, 11: nn.Linear's default initialisation drawn from an explicit generator
capture      researchers (no notebook): a layer's activations from any torch model, for SRM/PPPM
verdicts     the notebooks' verdicts on the claims they test (collected by ``python -m tools.verdicts``)

``core`` imports no part of the course; only :mod:`isodl.core.checks` uses the
exercise framework :mod:`isodl.exercises`.
"""

__all__: list[str] = []
