// Light stand-in for the `string-width` package in the CLI bundle. The real one compiles a
// `\p{RGI_Emoji}` regular expression at load time (~40 ms, most of the CLI's start-up); shoal's
// help and tables are plain text, so the display width is the number of code points once ANSI
// escapes and zero-width marks are removed, with East Asian wide characters counted twice.
const ANSI = /\u001B\[[0-9;?]*[ -/]*[@-~]|\u001B\][^\u0007\u001B]*(?:\u0007|\u001B\\)/g;
const ZERO = /[\u0000-\u001F\u007F-\u009F\u00AD\u0300-\u036F\u200B-\u200F\u2028-\u202E\u2060-\u206F\uFE00-\uFE0F\uFEFF]/;

function wide(cp) {
  return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF && cp !== 0x303F)
    || (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F)
    || (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1FAFF)
    || (cp >= 0x20000 && cp <= 0x3FFFD);
}

export default function stringWidth(input, options = {}) {
  if (typeof input !== 'string' || input.length === 0) return 0;
  const s = options.countAnsiEscapeCodes ? input : input.replace(ANSI, '');
  let width = 0;
  for (const ch of s) {
    if (ZERO.test(ch)) continue;
    width += wide(ch.codePointAt(0)) ? 2 : 1;
  }
  return width;
}
