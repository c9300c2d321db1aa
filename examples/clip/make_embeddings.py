#!/usr/bin/python3
"""Writes the example embeddings of examples/clip/: synthetic, but shaped like
real CLIP output, so that clip-score's numbers look like those of a real
evaluation (numpy only; deterministic).

What makes them CLIP-like:
  - unit vectors in D = 128 dimensions, stored as float16 (as clip-retrieval
    writes its embeddings);
  - 16 concepts: an image is a noisy view of one concept, its captions are
    noisy views of the image's content, so captions of related images are
    near each other too and retrieval is not trivial;
  - a modality gap: images and texts each carry their own common offset, so a
    matched image-caption pair has cos about 0.3 and an unmatched one about
    0.1 to 0.2, as with OpenAI's ViT-B/32 (CLIPScore about 0.75).

Files (N = 128 images, R = 4 references):
  images.npy [128, 128] float16       one embedding per image
  candidates.npy [128, 128] float16   a caption to score for each image
  references.npy [128, 4, 128] float16  four reference captions per image
  caption_image.npy [640] int64       the image of each of the 640 captions of
      cat(candidates, references reshaped to [512, 128]): 0..127, then each
      image index 4 times
"""
import os

import numpy as np

rng = np.random.default_rng(42)
N, R, D, K = 128, 4, 128, 16
GAP, NOISE = 1.0, 1.5  # weights of the modality offset and of the noise in each row
here = os.path.dirname(os.path.abspath(__file__))


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def noise(*shape):
    return unit(rng.normal(size=shape + (D,)))


concepts = noise(K)
content = unit(concepts[rng.integers(0, K, N)] + 0.8 * noise(N))  # what each image shows
gap_image = noise()  # the modality offsets: two cones whose axes are 60 degrees apart
other = noise()
other = unit(other - (other @ gap_image) * gap_image)
gap_text = 0.5 * gap_image + np.sqrt(0.75) * other

images = unit(content + GAP * gap_image + NOISE * noise(N))
captions = unit(content[:, None, :] + 0.8 * noise(N, R + 1))  # what each caption says
texts = unit(captions + GAP * gap_text + NOISE * noise(N, R + 1))

np.save(os.path.join(here, "images.npy"), images.astype(np.float16))
np.save(os.path.join(here, "candidates.npy"), texts[:, 0].astype(np.float16))
np.save(os.path.join(here, "references.npy"), texts[:, 1:].astype(np.float16))
np.save(os.path.join(here, "caption_image.npy"),
        np.concatenate([np.arange(N), np.repeat(np.arange(N), R)]).astype(np.int64))

cos = (unit(images) * unit(texts[:, 0])).sum(-1)
print("matched cos %.3f, unmatched %.3f, CLIPScore %.3f" % (
    cos.mean(), (unit(images) @ unit(texts[:, 0]).T)[~np.eye(N, dtype=bool)].mean(), 2.5 * np.clip(cos, 0, None).mean()))
