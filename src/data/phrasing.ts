/**
 * Question templates per task. The first template of each list is the spec's canonical prompt; the rest
 * are paraphrases. Placeholders: {obj} {a} {b} (object names), {colour}, {shape}, {shapes} (plural),
 * {a_colour_shape} ("a red circle" / "an orange star"). Follow-up templates refer back with "it"/"ones".
 */
import type { Rng } from '../tensor/rng.ts';

export const TEMPLATES = {
  caption: ['Describe the image.', 'What do you see in this image?', 'Describe the picture.', 'What is in the image?',
    'List the objects in the image.', 'Give a short description of the image.', 'What does this picture show?'],
  countTotal: ['How many objects are there?', 'How many objects are in the image?', 'Count the objects.',
    'How many things can you see?', 'What is the number of objects in the picture?', 'Count all the objects in the image.'],
  countColour: ['How many {colour} objects are there?', 'How many {colour} things are in the image?', 'Count the {colour} objects.',
    'How many objects are {colour}?', 'What is the number of {colour} objects?', 'How many {colour} items can you see?'],
  countShape: ['How many {shapes} are there?', 'How many {shapes} are in the image?', 'Count the {shapes}.',
    'How many {shapes} can you see?', 'What is the number of {shapes} in the picture?', 'How many {shapes} does the image contain?'],
  colour: ['What color is the {obj}?', 'What colour is the {obj}?', 'Which color does the {obj} have?', 'What is the color of the {obj}?',
    'Tell me the color of the {obj}.', 'The {obj} is what color?'],
  shape: ['What shape is the {colour} object?', 'What is the shape of the {colour} object?', 'Which shape is {colour}?',
    'What kind of shape is the {colour} one?', 'The {colour} object is what shape?', 'Name the shape of the {colour} object.'],
  exists: ['Is there {a_colour_shape}?', 'Is there {a_colour_shape} in the image?', 'Can you see {a_colour_shape}?',
    'Does the image contain {a_colour_shape}?', 'Is {a_colour_shape} present?', 'Do you see {a_colour_shape} anywhere?'],
  left: ['Is the {a} to the left of the {b}?', 'Is the {a} left of the {b}?', 'Is the {a} on the left side of the {b}?',
    'Does the {a} appear to the left of the {b}?', 'Is the {a} further left than the {b}?'],
  right: ['Is the {a} to the right of the {b}?', 'Is the {a} right of the {b}?', 'Is the {a} on the right side of the {b}?',
    'Is the {a} further right than the {b}?'],
  above: ['Is the {a} above the {b}?', 'Is the {a} higher than the {b}?', 'Is the {a} higher up than the {b}?',
    'Does the {a} sit above the {b}?', 'Is the {a} located above the {b}?'],
  below: ['Is the {a} below the {b}?', 'Is the {a} lower than the {b}?', 'Is the {a} underneath the {b}?', 'Does the {a} sit below the {b}?'],
  read: ['What number is written in the image?', 'What digit is shown?', 'Which number can you read in the image?',
    'Read the number in the image.', 'What number do you see?', 'Is there a digit? Which one?'],
  ground: ['Where is the {obj}?', 'Give the bounding box of the {obj}.', 'Locate the {obj}.', 'What are the coordinates of the {obj}?',
    'Find the {obj} and give its box.', 'Where is the {obj} located?'],
  click: ['Click the {obj}.', 'Click on the {obj}.', 'Please click the {obj}.', 'Tap the {obj}.', 'Press the {obj}.',
    'Select the {obj} by clicking it.'],
  // follow-ups: resolve against the previous turn's object or count
  colourIt: ['What color is it?', 'And what color is it?', 'Which color is it?', 'What colour is it?', 'What is its color?'],
  groundIt: ['Where is it?', 'Where is it located?', 'Give its bounding box.', 'What are its coordinates?', 'Can you locate it?'],
  clickIt: ['Click it.', 'Click on it.', 'Now click it.', 'Please click it.', 'Tap it.'],
  shapeIt: ['What shape is it?', 'And its shape?', 'What kind of shape is it?', 'Which shape is it?', 'What is its shape?'],
  relationIt: ['Is it {rel} the {b}?', 'And is it {rel} the {b}?', 'Is that one {rel} the {b}?', 'Would you say it is {rel} the {b}?',
    'Is it located {rel} the {b}?'],
  countColourMore: ['And how many are {colour}?', 'What about {colour}?', 'And {colour} ones?', 'How about {colour} objects?',
    'And how many {colour} ones?'],
  countShapeMore: ['And how many {shapes}?', 'What about {shapes}?', 'And {shapes}?', 'How about {shapes}?', 'And how many {shapes} are there?'],
} as const satisfies Record<string, readonly string[]>;

export type TemplateKey = keyof typeof TEMPLATES;

/** Relation phrases used inside `relationIt`. */
export const REL_PHRASE = { left: 'to the left of', right: 'to the right of', above: 'above', below: 'below' } as const;

/** Pick a template: the canonical one (index 0) with probability `canonical`, else a uniform paraphrase. */
export function pickTemplate(rng: Rng, key: TemplateKey, canonical = 0.35): string {
  const list: readonly string[] = TEMPLATES[key];
  return rng.uniform() < canonical ? list[0]! : list[1 + rng.int(list.length - 1)]!;
}

/** `a red circle`, `an orange star`. */
export const withArticle = (phrase: string): string => `${/^[aeiou]/i.test(phrase) ? 'an' : 'a'} ${phrase}`;

/** Fill `{name}` placeholders. */
export function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (m, k: string) => {
    const v = vars[k];
    if (v === undefined) throw new Error(`internal: template "${template}" needs {${k}}`);
    return v;
  });
}

/** Caption sentence frames around the object list ({list}) and count ({n}). The first is canonical. */
export const CAPTION_FRAMES = ['{List}.', 'There is {list}.', 'The image shows {list}.', '{N} objects: {list}.',
  'From left to right: {list}.', 'A picture with {list}.', 'In this image I can see {list}.'];
