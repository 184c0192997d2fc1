"""t-SNE of learned features (e.g. a network's penultimate layer), coloured by label."""

from __future__ import annotations

import numpy as np

__all__ = ["subsample", "tsne", "plot_embedding"]


def subsample(labels, max_points: int, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_points`` samples, stratified by label so that rare
    classes (expression frames are a few percent) stay visible."""
    labels = np.asarray(labels)
    if len(labels) <= max_points:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = max(1, max_points // len(classes))
    picked = []
    for c, n in zip(classes, counts):
        idx = np.flatnonzero(labels == c)
        picked.append(rng.choice(idx, size=min(n, share), replace=False))
    return np.sort(np.concatenate(picked))


def tsne(
    features, seed: int = 0, perplexity: float = 30.0, pca_dims: int | None = 50, max_iter: int = 1000
) -> np.ndarray:
    """2-D t-SNE (scikit-learn) of ``(N, D)`` features, deterministic for a seed.

    PCA to ``pca_dims`` first (the usual t-SNE practice) removes noise dimensions and
    makes it faster; perplexity is capped below N/3 so small sets still work. OpenMP is
    held to one thread: on a shared 2-core machine scikit-learn's spinning threads made
    a 250-point t-SNE ten times slower (25 s instead of 2.5 s).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    if len(x) < 5:
        raise ValueError(f"t-SNE needs at least 5 points, got {len(x)}")
    with threadpool_limits(1):
        if pca_dims and x.shape[1] > pca_dims and len(x) > pca_dims:
            x = PCA(n_components=pca_dims, random_state=seed).fit_transform(x)
        perplexity = min(perplexity, max(2.0, (len(x) - 1) / 3))
        return TSNE(
            n_components=2,
            perplexity=perplexity,
            init="pca",
            random_state=seed,
            learning_rate="auto",
            max_iter=max(250, max_iter),
        ).fit_transform(x)


def plot_embedding(
    xy: np.ndarray, labels, ax=None, title: str = "t-SNE", palette=None, order=None, size: float = 10
):
    """Scatter of a 2-D embedding, one colour per label value (seaborn)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.6, 4))
    sns.scatterplot(
        x=xy[:, 0],
        y=xy[:, 1],
        hue=np.asarray(labels),
        hue_order=order,
        palette=palette,
        s=size,
        linewidth=0,
        alpha=0.8,
        ax=ax,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(fontsize=7, markerscale=1.5, title=None)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure
