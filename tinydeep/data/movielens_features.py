"""Wide & Deep features for MovieLens 100K: which ids the wide part memorizes, and what the
deep part embeds, for any (user, movie) pair.

Every feature here is a fact about the user or the movie (or the training split), so the
same code scores a rated pair and a movie the user never saw (the sampled negatives of the
ranking metrics). Read in this order:
  1. the settings       age groups, the wide columns and their sizes
  2. MovieLensFeatures  fit on the training rows (popularity, year statistics), then
                        transform any (user, movie) pairs

What transform returns for N pairs (G = 19 genres, "no genre" is id G; V_c = vocab_sizes[c]):
    "user", "item", "occupation", "gender", "age_group"
                  (N,) int64 in [0, V_c): the deep part's embedded columns
    "numeric"     (N, G + 2) float32: the movie's genre flags, its release year and the log of
                  its rating count in the training rows (both standardized on those rows)
    "wide"        (N, K) int64 in [0, wide_size): the active ids of the wide columns, each
                  column shifted into its own range (wide_ranges). A movie has 1 to 6 genres,
                  so a genre cross fills MAX_GENRES slots, the unused ones with the id of
                  (value, "no genre"): a constant that its weight learns like a bias.

Crosses are exact, not hashed: a cross of a (|A| values) and b (|B|) is a * |B| + b. Hashing
(tinydeep.data.features.hash_cross, for the census data) pays off when the product space is
too big to hold; here the largest, user x genre, has 943 * 20 = 18,860 ids.

Left out: the user's zip code, the movie's title words, and features of the rating's time
(all three tried in examples/movielens.py's study or left for later: docs/movielens.md).
"""

from __future__ import annotations

import numpy as np

from tinydeep.data.movielens import MovieLens

# MovieLens 1M's age groups (its README): under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+.
AGE_BOUNDARIES = (18, 25, 35, 45, 50, 56)
MAX_GENRES = 6  # the most genres a movie of MovieLens 100K has
# Every wide column there is; WIDE, the default, has the ids alone: each genre cross lowered
# the test AUC on both the temporal and the random split (docs/movielens.md has the table),
# though the user x genre cross raises the wide model's HR@10.
WIDE_COLUMNS = (
    "user",
    "item",
    "user_x_genre",
    "occupation_x_genre",
    "age_x_genre",
    "gender_x_genre",
)
WIDE = ("user", "item")
DEEP = ("user", "item", "occupation", "gender", "age_group")  # the embedded columns


class MovieLensFeatures:
    """MovieLensFeatures(data, wide=WIDE): the features of (user, movie) pairs of `data`.

    wide: which of WIDE_COLUMNS go into the wide part ("user" and "item" alone give it one
        weight per user and per movie: a user's leniency and a movie's appeal).
    Call fit(train_rows) once, then transform(user, item) for any pairs.
    """

    def __init__(self, data: MovieLens, wide: tuple[str, ...] = WIDE):
        unknown = [name for name in wide if name not in WIDE_COLUMNS]
        if unknown or len(set(wide)) != len(wide):
            raise ValueError(
                f"MovieLensFeatures: wide must be distinct names among {WIDE_COLUMNS}, "
                f"got {tuple(wide)}"
            )
        self.data, self.wide = data, tuple(wide)
        g = data.genres.shape[1]
        self.num_genres = g
        gender = np.asarray(data.gender)
        self.user_gender = (gender == "M").astype(np.int64)  # (U,) 0 = F, 1 = M
        self.user_age_group = np.digitize(data.age, AGE_BOUNDARIES).astype(np.int64)  # (U,)
        # (I, MAX_GENRES) genre ids of each movie, padded with g ("no genre")
        if data.genres.sum(axis=1).max() > MAX_GENRES:
            raise ValueError(f"MovieLensFeatures: a movie has more than {MAX_GENRES} genres")
        slots = np.full((data.num_items, MAX_GENRES), g, dtype=np.int64)
        movie, genre = np.nonzero(data.genres)  # row-major: each movie's genres in order
        slot = np.cumsum(data.genres, axis=1)[movie, genre] - 1  # 0 for its first genre, ...
        slots[movie, slot] = genre
        self.movie_genres = slots
        year = data.release_date.astype("datetime64[Y]").astype(np.int64) + 1970.0
        self.movie_year = np.where(np.isnat(data.release_date), np.nan, year)  # (I,), NaT: nan
        self.year_mean = self.year_std = None  # set by fit
        self.log_count = self.count_mean = self.count_std = None

    # -- sizes --------------------------------------------------------------------------------

    @property
    def vocab_sizes(self) -> dict[str, int]:
        """Embedded column -> number of ids (the deep part's tables)."""
        d = self.data
        return {
            "user": d.num_users,
            "item": d.num_items,
            "occupation": len(d.occupations),
            "gender": 2,
            "age_group": len(AGE_BOUNDARIES) + 1,
        }

    @property
    def num_numeric(self) -> int:
        return self.num_genres + 2

    def _wide_widths(self) -> dict[str, int]:
        v, g = self.vocab_sizes, self.num_genres + 1  # + 1: "no genre"
        return {
            "user": v["user"],
            "item": v["item"],
            "user_x_genre": v["user"] * g,
            "occupation_x_genre": v["occupation"] * g,
            "age_x_genre": v["age_group"] * g,
            "gender_x_genre": 2 * g,
        }

    @property
    def wide_ranges(self) -> dict[str, tuple[int, int]]:
        """Wide column -> (start, stop): its ids lie in [start, stop) of the shared id space."""
        widths = self._wide_widths()
        ranges, start = {}, 0
        for name in self.wide:
            ranges[name] = (start, start + widths[name])
            start += widths[name]
        return ranges

    @property
    def wide_size(self) -> int:
        """The rows of the wide part's (wide_size, 1) table."""
        return sum(self._wide_widths()[name] for name in self.wide)

    # -- fitting and transforming ---------------------------------------------------------------

    def fit(self, train_rows: np.ndarray) -> MovieLensFeatures:
        """Learn what the training ratings say: each movie's rating count, and the mean and
        spread of the release year and the log count over those ratings. Returns self."""
        item = self.data.item[np.asarray(train_rows)]
        if len(item) == 0:
            raise ValueError("MovieLensFeatures.fit: train_rows is empty")
        self.log_count = np.log1p(np.bincount(item, minlength=self.data.num_items))  # (I,)
        year = self.movie_year[item]
        year = year[np.isfinite(year)]
        self.year_mean, self.year_std = float(year.mean()), float(year.std()) or 1.0
        counts = self.log_count[item]
        self.count_mean, self.count_std = float(counts.mean()), float(counts.std()) or 1.0
        return self

    def transform(self, user: np.ndarray, item: np.ndarray) -> dict[str, np.ndarray]:
        """The model inputs of the pairs (user[n], item[n]); shapes in the module docstring."""
        if self.log_count is None:
            raise RuntimeError("MovieLensFeatures: call fit(train_rows) before transform")
        user, item = np.asarray(user, dtype=np.int64), np.asarray(item, dtype=np.int64)
        if user.shape != item.shape or user.ndim != 1:
            raise ValueError(
                f"MovieLensFeatures.transform: user and item must be two (N,) arrays, got "
                f"shapes {user.shape} and {item.shape}"
            )
        occupation = self.data.occupation[user]
        gender, age_group = self.user_gender[user], self.user_age_group[user]
        year = self.movie_year[item]
        year = np.where(np.isfinite(year), (year - self.year_mean) / self.year_std, 0.0)
        count = (self.log_count[item] - self.count_mean) / self.count_std
        numeric = np.concatenate(
            [self.data.genres[item], year[:, None], count[:, None]], axis=1
        ).astype(np.float32)  # (N, G + 2)

        genres, g = self.movie_genres[item], self.num_genres + 1  # (N, MAX_GENRES)
        columns = {  # each (N, slots) before its shift into the shared id space
            "user": user[:, None],
            "item": item[:, None],
            "user_x_genre": user[:, None] * g + genres,
            "occupation_x_genre": occupation[:, None] * g + genres,
            "age_x_genre": age_group[:, None] * g + genres,
            "gender_x_genre": gender[:, None] * g + genres,
        }
        ranges = self.wide_ranges
        wide = np.concatenate([columns[n] + ranges[n][0] for n in self.wide], axis=1)
        return {
            "user": user,
            "item": item,
            "occupation": occupation,
            "gender": gender,
            "age_group": age_group,
            "numeric": numeric,
            "wide": wide,
        }

    def wide_id_names(self, ids: np.ndarray) -> list[str]:
        """Readable names of wide ids ("user 12", "writer x Drama"): what a
        weight of the wide part stands for."""
        d, g = self.data, self.num_genres + 1
        genre = list(d.genre_names) + ["no genre"]
        ages = ["<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]
        names = []
        for i in np.asarray(ids).tolist():
            column = next(n for n, (lo, hi) in self.wide_ranges.items() if lo <= i < hi)
            k = i - self.wide_ranges[column][0]
            a, b = divmod(k, g)  # a cross's two values
            if column == "user":
                names.append(f"user {k + 1}")
            elif column == "item":
                names.append(f"movie {d.title[k]}")
            elif column == "user_x_genre":
                first = f"user {a + 1}"
            elif column == "occupation_x_genre":
                first = str(d.occupations[a])
            elif column == "age_x_genre":
                first = f"age {ages[a]}"
            else:
                first = "FM"[a]
            if column not in ("user", "item"):
                names.append(f"{first} x {genre[b]}")
        return names
