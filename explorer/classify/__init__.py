"""Classification of scattering features with a Gaussian-kernel SVM, as in Oyallon & Mallat, "Deep
Roto-Translation Scattering for Object Classification" (CVPR 2015), science.md §2.

The pipeline: YUV images scattered per channel (the roto-translation scattering, or the translation
scattering at the same J for comparison), features read from the feature store, log(|S| + 1e-6),
each feature standardised with training statistics, a Gaussian kernel exp(−‖x − y‖² / (2σ²)) with
σ the mean norm of the standardised training vectors, and one-vs-all SVMs with C = 50.

Two methods, because an exact 50,000-point kernel SVM is out of reach of a small CPU:

- ``exact``: the kernel SVM itself (scikit-learn's ``OneVsRestClassifier(SVC(kernel="precomputed"))``
  on a Gram matrix computed in blocks with torch), fitted on a class-balanced subset of the training
  split (n images per class, drawn with a seeded generator; the indices are stored);
- ``nystroem``: the same kernel approximated by Nyström features (scikit-learn's ``Nystroem``) and a
  linear SVM, on the whole training split; its gap to the exact SVM is measured on that subset.

Modules: `settings` (what a classification is), `kernel` (streamed features, statistics, Gram
blocks), `svm` (the two methods' fits and decisions), `pipeline` (`classify` and `predict`: the
stages, with progress bars and timings), `results` (the results store and the reading API the
dashboard uses: `results.list_results`, `results.comparison_table`). Computation side: never imports
the UI libraries. Submodules are imported on use, so that reading results stays light.
"""
