"""Training of vsr's generators: data, losses, discriminator, the loop, export and video evaluation.

Not imported by ``vsr``; needs torch (and matplotlib, onnx, onnxruntime: ``pip install 'vsr[train]'``).
"""
