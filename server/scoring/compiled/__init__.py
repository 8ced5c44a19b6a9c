"""The compiled scoring paths: native tree code (treelite/tl2cgen) and ONNX graphs (onnxruntime).

A version is compiled at registration (:mod:`.compiler`) and its compiled form is loaded with it
(:mod:`.stored`); the forms themselves are :mod:`.onnx`, :mod:`.native` and :mod:`.ensembles` (a
voting or stacking ensemble's tree members as native trees), and :mod:`.estimator` reads what
they need from the fitted pipeline. Imports point one way (compiler and stored over ensembles,
ensembles over native, native over onnx), so no module needs a deferred import to break a circle.
The compiled path never changes an answer the model would give: input a form cannot represent
goes to scikit-learn for that call.
"""
