/**
 * Shapes World vocabulary (docs: /work/shared/specs/shapes-world.md): the names, base colours and size
 * ranges every other `data/` file reads. Nothing here depends on a renderer.
 */
import type { RGB } from '../image/image.ts';

export const SHAPES = ['circle', 'square', 'triangle', 'star'] as const;
/** A drawable shape; `digit` is the optional glyph object. */
export type Shape = (typeof SHAPES)[number] | 'digit';
export const ALL_SHAPES: readonly Shape[] = [...SHAPES, 'digit'];

export const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'] as const;
/** An object colour name; digits are always `black`. */
export type Colour = (typeof COLOURS)[number] | 'black';
export const ALL_COLOURS: readonly Colour[] = [...COLOURS, 'black'];

export const COLOUR_RGB: Readonly<Record<Colour, RGB>> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [240, 200, 30],
  purple: [140, 60, 190],
  orange: [245, 130, 30],
  black: [0, 0, 0],
};
export const COLOUR_JITTER = 20;

export const BACKGROUNDS = { white: [255, 255, 255], 'light grey': [225, 225, 225], cream: [245, 240, 220] } as const satisfies Record<string, RGB>;
export type BackgroundName = keyof typeof BACKGROUNDS;
export const BACKGROUND_JITTER = 8;

export type SizeClass = 'small' | 'large';
/** Bounding-box side as a fraction of the canvas side. */
export const SIZE_RANGE: Readonly<Record<SizeClass, readonly [number, number]>> = { small: [0.14, 0.2], large: [0.26, 0.34] };
/** Digit glyph (ink) height as a fraction of the canvas side. */
export const DIGIT_HEIGHT_RANGE = [0.22, 0.32] as const;
/** Minimum gap between object boxes, in pixels at 128 px (scaled with the canvas). */
export const GAP_AT_128 = 3;

export const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'] as const;

export const plural = (s: Shape): string => `${s}s`;
