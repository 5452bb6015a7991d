"""Every notebook (00-11): what all parts of the course share.

config       seeds, device, CPU threads, SCALE, headless detection (``setup``)
validate     argument checks with clear errors
data         offline datasets and real MNIST/CIFAR-10 loaders
activations  elementwise and isotropic activation functions (notebook 01)
ops          small tensor operations (``unit_rows``, notebook 00)
train        the one training loop: ``fit``, ``train_epoch``, ``evaluate``, ``accuracy``
plots        the shared style and shared figures
widgets      interactive figures that also render statically when headless
coursemap    the course map: notebook -> title -> the subpackage behind it
checks       the exercise check of notebook 00
"""

__all__: list[str] = []
