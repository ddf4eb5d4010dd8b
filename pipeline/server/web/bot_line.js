// The bot's line in the page's transcript: one text per response that never gets shorter.
//
// The server reports the bot's words twice. The LLM's tokens (bot-llm-text) stream first, as they
// are generated; what the TTS speaks (bot-output segments, or bot-tts-text) follows, a sentence at
// a time, as the audio plays. Showing whichever arrived last made the line go backwards: "Sure! I"
// -> "Sure! I can" -> "Sure!" (the first spoken sentence) -> the whole answer. Here the line shows
// the longer of the two (the spoken text once it has caught up with the generated one) and never a
// text shorter than the one it shows: it only grows. A response cut off by the user keeps what was
// generated. Utterances with no LLM behind them (the greeting, a tool's
// sentence) have only spoken text.
//
// Pure: no DOM, so a test can drive it with the messages of a recorded response.

// A think block (Qwen3 reasoning, filtered out before the TTS) is never shown, closed or not.
function withoutThinking(text) {
  return text.replace(/<think>[\s\S]*?(<\/think>|$)/g, '');
}

function tidy(text) {
  return text.replace(/\s+/g, ' ').trim();
}

export class BotLine {
  constructor() {
    this.generated = '';         // LLM tokens, concatenated as they came
    this.segments = new Map();   // bot-output: segment id -> its spoken text so far
    this.tts = '';               // bot-tts-text pieces (servers that send no bot-output)
    this.text = '';              // what the line shows
    this.shown = [];             // every text the line showed, in order
  }

  // The LLM's next tokens.
  addGenerated(piece) {
    this.generated += piece;
    return this.update();
  }

  // One bot-output message: a segment's text (sent again with the same id as it is spoken). A
  // segment keeps its longest text: with word timestamps its first message has the whole
  // segment and the next ones the words spoken so far.
  setSegment(id, text) {
    const key = id != null ? id : `n${this.segments.size}`;
    const before = this.segments.get(key) || '';
    if (text.length >= before.length) this.segments.set(key, text);
    return this.update();
  }

  // One bot-tts-text piece.
  addTts(piece) {
    this.tts = this.tts ? `${this.tts} ${piece}` : piece;
    return this.update();
  }

  spoken() {
    if (this.segments.size) return tidy([...this.segments.values()].join(' '));
    return tidy(this.tts);
  }

  // The text to show now: the longer of spoken and generated (spoken on a tie), never shorter
  // than the text shown before.
  update() {
    const spoken = this.spoken();
    const generated = tidy(withoutThinking(this.generated));
    const longer = spoken.length >= generated.length ? spoken : generated;
    const next = longer.length >= this.text.length ? longer : this.text;
    if (next !== this.text) {
      this.text = next;
      this.shown.push(next);
    }
    return this.text;
  }
}

// How many times a line went from a text to a shorter one (0 for a line that only grows).
export function regressions(texts) {
  let count = 0;
  for (let i = 1; i < texts.length; i++) if (texts[i].length < texts[i - 1].length) count++;
  return count;
}
