"""Text masks: CLIP patch similarity to a text picks points, SAM turns them into a mask (coarse, MaskCLIP-style)."""

import numpy as np
import streamlit as st

from components import retrieval_view as view
from components.errors import user_errors
from components.images import pick_image
from components.sidebar import SEGMENT, TEXT, model_label, selected_model
from components.state import get_engine, get_working_set
from core import registry
from core.analysis.retrieval import class_embeddings, expand_prompts, patch_text_similarity, peak_points
from core.models import Can, can
from core.models.sam import SamPrompt
from core.text import count

st.title("Text masks")
st.warning(
    "**Coarse by design.** CLIP learned to match text with whole images, not with patches, so its patch-level "
    "similarity to a text is a rough heat map (as in MaskCLIP-style methods). The mask is SAM's answer to a few "
    "points placed at the most similar patches: good when the peak lands on the object, wrong when it does not.",
    icon=":material/info:",
)

if not can(registry.parse(selected_model(TEXT)).spec, Can.DENSE_TEXT):
    st.info(
        f"Text masks need patch tokens in the image–text space, which {model_label(selected_model(TEXT))} does not "
        "have (it pools its patches with an attention head before the joint space): choose a CLIP model as the "
        "sidebar's image–text model."
    )
    st.stop()

images = get_working_set()
if not images.items:
    st.info("The working set is empty. Add images on the Upload page.")
    st.stop()

left, right = st.columns(2)
with left:
    index = pick_image(images, "Image", key="tm_image")
prompt = right.text_input("What to find (a short noun phrase)", "cat", key="tm_prompt").strip()
n_points = right.slider("Points for SAM (the most similar patches)", 1, 5, 1, key="tm_points")
if not prompt:
    st.info("Type what to find, for example “cat” or “red car”.")
    st.stop()

with user_errors("The text-prompted mask"):  # each step names itself above the (faded) previous result
    clip, sam, engine = selected_model(TEXT), selected_model(SEGMENT), get_engine()
    image = images.items[index].image
    with st.spinner(f"Scoring patches with CLIP against “{prompt}”…", show_time=True):
        text = class_embeddings(engine.embed_text(expand_prompts([prompt]), clip), 1)[0]
        similarity = patch_text_similarity(engine.clip_patch_embeddings(image, clip), text)
    points = peak_points(similarity, image.shape[:2], n_points)
    with st.spinner("Embedding the image with SAM (once per image; slow on a CPU)…", show_time=True):
        embedding = engine.sam_embedding(image, sam)
    with st.spinner(f"Prompting SAM with {count(len(points), 'point')}…", show_time=True):
        prediction = engine.sam_predict(embedding, sam, SamPrompt(points, np.ones(len(points), int)))
    best = int(prediction.scores.argmax())
    view.show_text_mask(image, similarity, points, prediction.masks[best], images.names[index], key="tm")
    st.caption(
        f"CLIP patch grid {similarity.shape[0]}×{similarity.shape[1]}; cosine from {similarity.min():.3f} to "
        f"{similarity.max():.3f}. SAM's predicted IoU for the mask: {prediction.scores[best]:.2f}."
    )
