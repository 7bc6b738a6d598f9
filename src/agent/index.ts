/** The agent: a tool-calling loop over a VLM with taint tracking, a frozen policy, built-in image tools and MCP tools. */
export { runAgent, type AgentModel, type AgentEvent, type AgentResult, type CallRecord, type ConfirmRequest, type RunAgentOptions, type StopReason } from './loop.ts';
export { ToolRegistry, openAITools, type AgentTool, type ToolContent, type ToolContext, type ToolResult, type ObjectSchema } from './tools.ts';
export { createPolicy, decide, isPolicy, type Decision, type Policy, type PolicyConfig, type Rule } from './policy.ts';
export { TRUSTED, describeTaint, isTainted, join, taintOf, type Taint } from './taint.ts';
export { imageTools, drawMarker } from './tools/image-tools.ts';
export { connectMcp, loadAgentConfig, parseAgentConfig, fromMcpResult, type AgentConfig, type McpConnection, type McpServerConfig } from './mcp.ts';
export { printable } from './display.ts';
