"""A one-player game of Pong on a grid, the environment of the R-STDP agent (pure numpy).

The field is ``width`` x 1 (units), its height divided into ``n_rows`` rows. The ball moves by
``ball_speed`` per step along a direction (vx, vy) with ``|vx| + |vy| = 1``, bounces off the top, the
bottom and the left wall; at the right wall the agent's paddle (length ``paddle_length``, centred on
its position) returns it, or it is missed and a new ball starts in the middle of the field at a
random height towards the paddle. Each step the paddle moves by ``paddle_speed`` towards the row the
agent named (or stays if it is already there). Sizes and speeds follow the game of the original
code (electronicvisions/model-sw-pong) and NEST's Pong example: field 1.6 x 1.0, ball speed 0.025,
ball radius 0.025, paddle speed 0.05, paddle length 0.2, horizontal speed 0.5 .. 1 of the ball's.

Examples
--------
>>> import numpy as np
>>> game = PongGame(n_rows=32, rng=np.random.default_rng(1))
>>> row = game.ball_row()
>>> 0 <= row < 32
True
>>> game.step(target_row=row) in (None, "hit", "miss")
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["PongGame"]


class PongGame:
    """The game state and its update (see the module docstring).

    Parameters
    ----------
    n_rows : int
        Rows of the grid (= input and output neurons of the agent), >= 2.
    rng : numpy.random.Generator
        Source of the new balls' heights and directions.
    width, ball_speed, ball_radius, paddle_speed, paddle_length : float
        Geometry in units of the field's height.
    """

    def __init__(self, n_rows: int, rng: np.random.Generator, width: float = 1.6, ball_speed: float = 0.025,
                 ball_radius: float = 0.025, paddle_speed: float = 0.05, paddle_length: float = 0.2):
        if int(n_rows) < 2:
            raise ValueError(f"n_rows must be >= 2, got {n_rows}")
        for name, value in (("width", width), ("ball_speed", ball_speed), ("ball_radius", ball_radius),
                            ("paddle_speed", paddle_speed), ("paddle_length", paddle_length)):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        self.n_rows = int(n_rows)
        self.rng = rng
        self.width, self.ball_speed, self.ball_radius = float(width), float(ball_speed), float(ball_radius)
        self.paddle_speed, self.paddle_length = float(paddle_speed), float(paddle_length)
        self.paddle_y = 0.5
        self.hits = 0
        self.misses = 0
        self._new_ball()

    def _new_ball(self) -> None:
        vx = 0.5 + 0.5 * self.rng.random()
        self.ball_direction = np.array([vx, (1.0 - vx) * self.rng.choice([-1.0, 1.0])])
        self.ball_x = self.width / 2
        self.ball_y = float(self.rng.random())

    def row_of(self, y: float) -> int:
        """Grid row of height ``y`` (0 at the bottom)."""
        return int(min(max(np.floor(y * self.n_rows), 0), self.n_rows - 1))

    def ball_row(self) -> int:
        """Row of the ball: the input neuron that fires in this iteration."""
        return self.row_of(self.ball_y)

    def paddle_row(self) -> int:
        return self.row_of(self.paddle_y)

    def step(self, target_row: int) -> str | None:
        """Move the paddle towards ``target_row``, then the ball; returns "hit", "miss" or None."""
        if not 0 <= int(target_row) < self.n_rows:
            raise ValueError(f"target_row must lie in [0, {self.n_rows - 1}], got {target_row}")
        difference = int(target_row) - self.paddle_row()
        self.paddle_y = float(np.clip(self.paddle_y + np.sign(difference) * self.paddle_speed, 0.0, 1.0))
        event = None
        if self.ball_y + self.ball_radius >= 1.0:
            self.ball_direction[1] = -abs(self.ball_direction[1])
        elif self.ball_y - self.ball_radius <= 0.0:
            self.ball_direction[1] = abs(self.ball_direction[1])
        if self.ball_x - self.ball_radius <= 0.0:
            self.ball_direction[0] = abs(self.ball_direction[0])
        elif self.ball_x + self.ball_radius >= self.width:
            if abs(self.paddle_y - self.ball_y) <= self.paddle_length / 2:
                self.ball_direction[0] = -abs(self.ball_direction[0])
                self.hits += 1
                event = "hit"
            else:
                self.misses += 1
                self._new_ball()
                return "miss"
        self.ball_x += self.ball_speed * self.ball_direction[0]
        self.ball_y = float(np.clip(self.ball_y + self.ball_speed * self.ball_direction[1], 0.0, 1.0))
        return event
