/** Render chat messages as a plain completion prompt (the engine runs raw prompts). */
export function renderChat (messages: Array<{ role: string, content: string }>): string {
  return messages.map(m => `${m.role.charAt(0).toUpperCase()}${m.role.slice(1)}: ${m.content}\n`).join('') + 'Assistant:'
}
