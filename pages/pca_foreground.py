"""PCA Foreground (DINOv2, DINOv3): the published PCA recipe step by step, joint PCA, registers and token norms."""

import streamlit as st

from components import attention_view
from components import pca_view as view
from components.errors import user_errors
from components.images import pick_image, quick_add
from components.progress import patch_tokens, progress_bar
from components.sidebar import DENSE, random_note, selected_model
from components.state import get_engine, get_working_set
from core.analysis.matching import small_image_note
from core.analysis.pca import compute_token_norms
from core.registry import parse, register_variants

st.title("PCA Foreground")
st.caption(
    "How the DINOv2 paper colours its pictures: the dense model's patch tokens → a 1-component PCA over all patches "
    "splits foreground from background → a 3-component PCA fitted on the foreground only, shown as RGB. "
    "The model runs once per image, layer and size; sliders only redraw the panels."
)

quick_add("pca_quick")
images = get_working_set()
model = selected_model(DENSE)
mode = view.show_mode(key="pca")

if not images.items:
    st.info("The working set is empty. Add images on the Upload page.")
    st.stop()

if mode == view.ATTENTION:
    with user_errors("The attention maps"):
        item = images.items[pick_image(images, "Image", key="pca_attention_image")]
        inputs = attention_view.show_controls(model, key="pca_attention")
        if inputs:
            random_note(inputs.models, attention_view.RANDOM_MEANING)
            runs = attention_view.compute_runs(item.image, inputs)
            attention_view.show_attention(item.image, item.name, runs, key="pca_attention")
    st.stop()

with user_errors("The PCA foreground analysis"):
    depth = get_engine().num_layers(model)
    if mode == view.JOINT:
        chosen = [images.items[i] for i in view.pick_images(images.names, key="pca_joint")]
    else:
        chosen = [images.items[pick_image(images, "Image", key="pca_image")]]
    spec = parse(model).spec
    layer, size = view.show_token_controls(
        depth, "pca", spec.patch_size, choose_layer=mode != view.NORMS, n_images=len(chosen), joint=mode == view.JOINT
    )
    pixels = [item.image for item in chosen]
    if note := small_image_note([image.shape[:2] for image in pixels], size // spec.patch_size):
        st.info(note)

    if mode == view.JOINT and len(chosen) < 2:
        st.info("Pick at least two images: the joint PCA is fitted on the foreground of all of them together.")
    elif mode in (view.SINGLE, view.JOINT):
        [tokens] = patch_tokens(pixels, size, [(model, layer)])
        source = f"{model}, {view.layer_name(layer)}, {size} px"
        view.show_foreground_pca(pixels, [item.name for item in chosen], tokens, source, key="pca_recipe")
    elif mode == view.REGISTERS:
        variants = register_variants(model)
        if len(variants) == 1:
            st.info(
                f"{spec.title} has no twin with registers switched the other way "
                + (f"(it always has {spec.registers}), " if spec.registers else "")
                + "so its row is shown alone; choose a DINOv2 model in the sidebar to compare without and with."
            )
        random_note(
            variants,
            "With random weights this view means nothing: the high-norm artefact tokens, and their removal by "
            "registers, are learned in training, so no panel can show them.",
        )
        runs = patch_tokens(pixels, size, [(m, k) for m in variants for k in (layer, depth)])
        view.show_register_comparison(pixels[0], variants, runs[0::2], runs[1::2], key="pca_registers")
    else:
        update, close = progress_bar(f"Tokens of all {depth} blocks (one forward pass)")
        try:
            blocks = get_engine().layer_tokens(pixels, model, size, update)  # (L, 1, h, w, D)
        finally:
            close()
        view.show_token_norms(pixels[0], compute_token_norms(blocks[:, 0]), key="pca_norms")
