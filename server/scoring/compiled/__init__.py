"""The compiled scoring paths: native tree code (treelite/tl2cgen) and ONNX graphs (onnxruntime).

A version is compiled at registration (:mod:`.compiler`) and its compiled form is loaded with it
(:mod:`.stored`); the forms themselves are :mod:`.onnx` and :mod:`.native`, and :mod:`.estimator`
reads what both need from the fitted pipeline. Imports point one way (compiler and stored over
native, native over onnx), so no module needs a deferred import to break a circle. The compiled
path never changes an answer the model would give: input a form cannot represent goes
to scikit-learn for that call.
"""
