"""What a run starts from, shown in the top bar: the input image (ctrl+o), the weights and the seed (the command
palette), the device; and which model each effect's default follows the weights to here, so the forms show
the defaults a run will use. A mixin of :class:`~gradfx.tui.app.GradfxApp`."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.widgets import Static

from gradfx.engine.errors import GradfxError
from gradfx.engine.images.load import LoadedImage, load_image
from gradfx.engine.params import WEIGHT_MODES
from gradfx.engine.running.plan import MAX_SEED

from . import messages
from .paths import short_path
from .preview import shrink
from .screens import FilePicker, TextPrompt
from .widgets import ChainView, ParamForm

WEIGHT_SUFFIXES = (".h5", ".weights.h5", ".hdf5")  # what engine.models loads


class SettingsMixin:
    """The top bar's input image, weights, seed and device."""

    def _update_topbar(self) -> None:
        if self.loaded is not None:
            w, h = self.loaded.size
            image = f"{short_path(self.image_path, 24)} {w}×{h}"
        else:
            image = short_path(self.image_path, 24) if self.image_path else "none (ctrl+o opens one)"
        weights = short_path(self.weights, 24) if self.weights not in WEIGHT_MODES else self.weights
        parts = [f"gradfx │ input {image}", f"weights {weights}", f"seed {self.seed}", f"device {self.device_label}"]
        self.query_one("#topbar", Static).update(" │ ".join(parts))

    @work(thread=True, exit_on_error=False, group="probe")
    def _probe_device(self) -> None:
        from gradfx.engine.models import device as devices

        devices.quiet_tensorflow()
        try:
            label = devices.device_name(self.device)
        except GradfxError as exc:
            label = f"unavailable ({exc})"
        self.post_message(messages.DeviceFound(label))  # thread-safe, and a no-op if the app has gone meanwhile

    @work(thread=True, exit_on_error=False, group="follows", exclusive=True)
    def _probe_follows(self) -> None:
        """Which effects' default models follow the weights to the trained VGG16 here (no ImageNet file for
        InceptionV3 offline...): their forms then show the defaults a run will use, not the default model's."""
        from gradfx.engine.models import device as devices
        from gradfx.engine.models.choice import followed_model

        devices.quiet_tensorflow()
        weights, follows = self.weights, {}
        for name, eff in self.registry.effects.items():
            try:
                model = followed_model(eff, self.registry, weights)
            except GradfxError:  # a broken model plugin: the run says what is wrong
                model = None
            if model:
                follows[name] = model
        self.post_message(messages.FollowsFound(weights, follows))

    async def on_gradfx_app_follows_found(self, message: messages.FollowsFound) -> None:
        if message.weights != self.weights or message.follows == self.follows:
            return  # the weights changed meanwhile (a newer probe is on its way), or nothing changed
        self.follows = message.follows
        self._apply_follows()
        self.query_one(ChainView).show(self.chain, self._effects(), self.current)
        form = self.query_one(ParamForm)
        if form.about is not None:
            await self._show_about(form.about)
        elif self.current is not None and self.chain:
            step = self.chain[self.current]
            await form.show(self.current, step, self.registry.effects.get(step.effect))

    def _apply_follows(self) -> None:
        for step in self.chain:
            step.follow(self.follows.get(step.effect), self.registry.effects.get(step.effect))

    def on_gradfx_app_device_found(self, message: messages.DeviceFound) -> None:
        self._set_device_label(message.label)

    def _set_device_label(self, label: str) -> None:
        self.device_label = label
        self._update_topbar()

    def set_weights(self, mode: str) -> None:
        self.weights = mode
        self._update_topbar()
        self._probe_follows()
        self.notify(f"weights: {mode} for the next run")

    def action_weights_file(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.set_weights(str(path))

        self.push_screen(FilePicker("Weights file", None, WEIGHT_SUFFIXES), chosen)

    def action_seed(self) -> None:
        def parse(text: str) -> int:
            if not text.isdigit() or int(text) > MAX_SEED:
                raise ValueError(f"{text!r} is not a whole number from 0 to {MAX_SEED}")
            return int(text)

        def chosen(seed: int | None) -> None:
            if seed is not None:
                self.seed = seed
                self._update_topbar()

        self.push_screen(TextPrompt("Random seed", str(self.seed), "enter: set · esc: cancel", parse), chosen)

    # --- input image ---------------------------------------------------------------------------------------
    def action_open(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is not None:
                self._load_input(path)

        self.push_screen(FilePicker("Open input image", self.image_path), chosen)

    @work(thread=True, exit_on_error=False, group="load")
    def _load_input(self, path: Path) -> None:
        loaded = load_image(path, longest_side=self.longest_side)
        self.call_from_thread(self._input_loaded, path, loaded)

    def _input_loaded(self, path: Path, loaded: LoadedImage) -> None:
        self.image_path, self.loaded = path, loaded
        if not self.running:
            self._show_input()
        self._update_topbar()

    def _show_input(self) -> None:
        if self.loaded is not None:
            self._show_image(shrink(self.loaded.rgb), f"input {self.loaded.size[0]}×{self.loaded.size[1]}")
