"""Models: the model card table, generated from the registry."""

import streamlit as st

from components.state import get_engine
from core import config
from core.model_cards import model_cards
from core.models import families

st.title("Models")
st.caption(
    "Every model VFM Lens can run. Architecture and weights are separate: any model can also run with "
    "random weights. Parameter counts come from building the real architecture."
)

with st.spinner("Counting parameters…"):
    rows = model_cards(include_tiny=config.profile() == "tiny")  # the test models only where they are the default
st.dataframe(rows, hide_index=True, width="stretch")
st.markdown("""
**Getting real weights**
- *Online*: they download on first use into the libraries' caches.
- *Prefetch* for an offline lecture hall: `make weights MODELS="clip_vit_b32 dinov2_small sam_vit_b"`.
- *Local folder*: set `VFM_LENS_WEIGHTS` to a folder with `dinov2_small/` (a transformers `save_pretrained`
  folder), `clip_vit_b32-openai.safetensors`, `timm_vit_b16.safetensors` (timm's `model.safetensors`, renamed), or
  `sam_vit_b_01ec64.pth` (SAM checkpoints are verified by SHA-256 when downloaded).
""")
gated = [f.title for f in families() if getattr(f.weights, "gated", False)]
if gated:
    st.markdown(
        f"**Gated weights** ({', '.join(gated)}): the hub asks you to accept the licence on the model's page first. "
        "Accept it there, sign in with `hf auth login`, then run `make weights MODELS=...`; or put a "
        "`save_pretrained` folder named after the model in `VFM_LENS_WEIGHTS`. Until then these run with random "
        "weights, said in the sidebar."
    )

engine = get_engine()
st.subheader("In memory on this server")
loaded = engine.loaded_models()
if loaded:
    st.markdown("\n".join(f"- `{m}`: loaded {engine.load_counts[m]}×" for m in loaded))
else:
    st.caption("No model loaded yet: each loads on first use, once for all sessions.")
