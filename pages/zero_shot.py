"""Zero-shot (CLIP, SigLIP 2): classify the working set by text prompts; accuracy and a confusion matrix when labels
exist. The model's own rule turns cosines into probabilities (a softmax for CLIP, a per-class sigmoid for SigLIP)."""

import streamlit as st

from components import retrieval_view as view
from components.errors import user_errors
from components.sidebar import TEXT, selected_model
from components.state import get_engine, get_working_set
from core.analysis.retrieval import class_embeddings, compute_classification, expand_prompts

SAMPLE_CLASSES = ["astronaut", "cat", "cup of coffee", "rocket", "man with a camera", "temple", "flower"]

st.title("Zero-shot")
st.caption(
    'An image–text model classifies without training: every class becomes text prompts ("a photo of a {}" …), a '
    "class is the average of its prompts' normalised text embeddings, and the model's own rule turns the cosine "
    "similarity between an image and each class into a probability (said below the prompts)."
)

images = get_working_set()
model = selected_model(TEXT)
if not images.items:
    st.info("The working set is empty. Add images on the Upload page.")
    st.stop()

labels = list(images.class_counts())
# one class is no choice to make: offer the sample classes beside it
defaults = labels if len(labels) >= 2 else labels + [c for c in SAMPLE_CLASSES if c not in labels]
classes, templates = view.edit_prompts(defaults, key="zs_classes")
if len(classes) < 2:
    st.info("Give at least two classes, one per line: zero-shot picks the best of them for every image.")
    st.stop()

with user_errors("Zero-shot classification"):
    prompts = expand_prompts(classes, templates)
    text = class_embeddings(view.embed_text(prompts, model), len(classes))  # loads the model on first use
    rule, note = get_engine().zero_shot_rule(model), get_engine().tokenizer_note(model)
    st.info(rule.describe(), icon=":material/functions:")
    if note:
        st.caption(f":material/casino: {note}")
    probs = rule.probabilities(view.embed_images(images.images, model), text)
    st.subheader("Per-image probabilities")
    view.show_probabilities(images, classes, probs, key="zs")

    st.subheader("Accuracy")
    missing = [label for label in labels if label not in classes]
    if not labels:
        st.info(
            "No labels: load a labeled set on Upload (the digits, or a zip with one folder per class) for accuracy."
        )
    elif missing:
        st.warning(f"Accuracy needs every label among the classes; missing: {', '.join(missing)}.")
    else:
        known = [i for i, label in enumerate(images.labels) if label is not None]
        predicted = [classes[probs[i].argmax()] for i in known]
        truth = [images.labels[i] for i in known]
        result = compute_classification(truth, predicted, classes)
        view.show_confusion(result, len(images.items) - len(known), key="zs")
