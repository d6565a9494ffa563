"""dlib's face-recognition ResNet read from its released ``.dat`` and run in torch (see ``network``)."""
