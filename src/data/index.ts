/** Shapes World data: scenes, renderers, LLaVA samples, teacher, graders, dataset writer. */
export * from './vocab.ts';
export * from './scene.ts';
export { renderScene, encodePng, addNoise, blurHalfPixel } from './render.ts';
export { renderSceneSvg, sceneSvg, svgTextRenders, type SvgRenderOptions, type DigitStyle } from './render-svg.ts';
export * from './facts.ts';
export * from './instruct.ts';
export * from './grade.ts';
export { teacherDialogues, teacherPrompt, checkTurn, TeacherReply, TEACHER_SYSTEM, type TeacherOptions, type TeacherResult, type TeacherSample, type DropReason } from './teacher.ts';
export { generateDataset, splitScenes, type GenerateOptions, type GenerateResult } from './generate.ts';
export { runDataShapes } from './cli.ts';
