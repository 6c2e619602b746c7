"""Write notebooks/what_is_latent_space.ipynb (without outputs) from the cells below: the talk slide by slide,
in the order of the story (possibility space, MNIST, photos, forget pixels, latent space, manifold, generative
model, what latent space is for), on the pretrained zoo models. `python notebooks/make_notebook.py`."""
from pathlib import Path

import nbformat

CELLS = [
    ("md", "# What is latent space?\n\nThe talk, slide by slide, measured on the pretrained models shipped with "
           "latentspace (`latentspace zoo` lists them): nothing is trained here, nothing is downloaded. Every "
           "function of `latentspace.notebook` returns a picture or a table that shows itself below the cell."),
    ("code", "from latentspace import notebook as ls\nfrom latentspace.latent.space import count_space\n"
             "from latentspace import api"),
    ("md", "## 1. Possibility space\n\nAn image of 2x2 pixels, each black or white, has 4 axes with 2 values: "
           "2^4 = 16 possible images. Here they all are."),
    ("code", "ls.space((2, 2, 1), levels=2)"),
    ("md", "## 2. MNIST\n\nA 28x28 grey digit has 784 axes of 256 values. The talk's 28 x 28 x 256 = 200,704 "
           "counts (axis, value) pairs; the number of images is 256^784."),
    ("code", "mnist = count_space((28, 28, 1), 256)\n"
             "print(f'axes x values: {28 * 28 * 256:,}; images: 256^784, a number of {mnist.digits:,} digits "
             "starting {mnist.leading}')"),
    ("md", "## 3. Photos\n\nA 960x1280 colour photo has 3,686,400 axes; the count of such images has millions "
           "of digits. Pixel space is unimaginably large."),
    ("code", "photo = count_space((1280, 960, 3), 256)\nprint(f'{photo.n_axes:,} axes; 256^{photo.n_axes:,} has "
             "{photo.digits:,} digits')"),
    ("md", "## 4. Forget pixels\n\nThe same face two ways: its first pixel values, then words read off its "
           "latent code."),
    ("code", "faces = api.open_run('zoo:faces')\nface = faces.dataset('test').images[0]\n"
             "print('pixels:', ', '.join(str(tuple(int(v) for v in face[:, 0, i])) for i in range(4)), '...')\n"
             "ls.describe('zoo:faces', [0])"),
    ("md", "## 5. Latent space\n\n16 numbers instead of 12,288 pixel values. Each row sweeps one axis; its "
           "label says which attribute the axis holds. The table compares the model with PCA on as many axes."),
    ("code", "ls.traversal('zoo:faces', 0)"),
    ("code", "ls.evaluation('zoo:faces')"),
    ("md", "## 6. The manifold, and how it is learned\n\nThe test digits' codes on a map, the decoded plane "
           "through them, and the map at the first, middle and last epoch of training."),
    ("code", "ls.manifold('zoo:mnist')"),
    ("code", "ls.evolution('zoo:mnist')"),
    ("md", "## 7. A generative model: encode, decode, sample\n\nTest faces and their reconstructions, then "
           "faces decoded from codes drawn by the latent diffusion prior."),
    ("code", "ls.reconstructions('zoo:faces')"),
    ("code", "ls.samples('zoo:faces', n=16, sampler='diffusion')"),
    ("md", "## 8. What latent space is for\n\nA cross-fade in pixel space makes double exposures; a walk "
           "through latent space passes through faces. Each frame is scored for how real it looks. Then one "
           "face edited along the direction of an attribute."),
    ("code", "ls.interpolation('zoo:faces', 0, 1)"),
    ("code", "ls.edit('zoo:faces', 3, 'glasses')"),
    ("md", "## The explorer\n\nThe live explorer, served from this kernel on a free local port (it stops with "
           "the kernel, or with `.stop()`)."),
    ("code", "explorer = ls.explore('zoo:faces')\nexplorer"),
    ("code", "explorer.stop()"),
]


def main() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text)
                for kind, text in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = Path(__file__).with_name("what_is_latent_space.ipynb")
    nbformat.write(nb, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
