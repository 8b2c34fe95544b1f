"""merlib's models: the multi-channel HTS-AT audio model (:mod:`merlib.models.htsat`), the R(2+1)D video
model (:mod:`merlib.models.video`), the audio-visual fusion model (:mod:`merlib.models.mer`) and the
loader for the authors' and HTS-AT's checkpoints (:mod:`merlib.models.checkpoints`).

Submodules are imported on demand (``from merlib.models.htsat import HTSAT``) so that importing this
package stays cheap.

Notebooks: 04_multichannel_htsat.ipynb, 05_r2plus1d_video.ipynb, 06_fusion_training.ipynb
"""
