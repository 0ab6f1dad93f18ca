/**
 * The SentencePiece-style vocabulary of the embedded models (tokenizer.ggml.model = "llama").
 *
 * llama.cpp's SPM tokenizer starts from single UTF-8 characters and repeatedly merges the adjacent
 * pair whose concatenation is in the vocabulary with the highest score; characters it cannot
 * place fall back to byte tokens <0x00>..<0xFF>. A piece is therefore reachable only when every
 * prefix of it is a piece too (▁t, ▁th, ▁the), so we add all prefixes of every word. Spaces are ▁.
 */

export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, byte: 6 } as const

export interface Vocabulary {
  tokens: string[]
  scores: number[]
  types: number[]
  unkId: number
  bosId: number
  eosId: number
}

// Common English words plus code keywords: enough for the workload generators' text to tokenize
// into word-sized pieces (realistic prompt lengths) rather than bytes.
const WORDS = `the of and to a in is it you that he was for on are with as I his they be at one have this
from or had by hot word but what some we can out other were all there when up use your how said an each
she which do their time if will way about many then them write would like so these her long make thing
see him two has look more day could go come did number sound no most people my over know water than call
first who may down side been now find any new work part take get place made live where after back little
only round man year came show every good me give our under name very through just form sentence great
think say help low line differ turn cause much mean before move right boy old too same tell does set three
want air well also play small end put home read hand port large spell add even land here must big high
such follow act why ask men change went light kind off need house picture try us again animal point mother
world near build self earth father head stand own page should country found answer school grow study still
learn plant cover food sun four between state keep eye never last let thought city tree cross farm hard
start might story saw far sea draw left late run while press close night real life few north open seem
together next white children begin got walk example ease paper group always music those both mark often
letter until mile river car feet care second book carry took science eat room friend began idea fish
mountain stop once base hear horse cut sure watch color face wood main enough plain girl usual young ready
above ever red list though feel talk bird soon body dog family direct pose leave song measure door product
black short numeral class wind question happen complete ship area half rock order fire south problem piece
told knew pass since top whole king space heard best hour better true during hundred five remember step
early hold west ground interest reach fast verb sing listen six table travel less morning ten simple
several vowel toward war lay against pattern slow center love person money serve appear road map rain
rule govern pull cold notice voice unit power town fine certain fly fall lead cry dark machine note wait
plan figure star box noun field rest correct able pound done beauty drive stood contain front teach week
final gave green quick develop ocean warm free minute strong special mind behind clear tail produce fact
street inch multiply nothing course stay wheel full force blue object decide surface deep moon island foot
system busy test record boat common gold possible plane stead dry wonder laugh thousand ago ran check game
shape equate miss brought heat snow tire bring yes distant fill east paint language among summary
document question answer user assistant model data file text code function return const value error
result report review customer order invoice account price total item please thanks hello summarize
classify positive negative neutral label sentiment rewrite edit fix bug test input output string number
array object class method import export default async await true false null undefined if else for while
def self print len range int str float dict none elif lambda yield public private static void new this
var let type interface extends implements from package module require console log json http request
response server client node peer network record store method speed token cache batch prefix latency`

const SUFFIXES = ['s', 'es', 'ed', 'ing', 'er', 'ly', 'tion', 'ment', 'ness', 'able', 'al', 'ers', 'est']
const SINGLE_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?\'"()[]{}<>=+-*/_#%&|@$~^`\\'
const SPACE = '\u2581'

let cached: Vocabulary | undefined

/** The embedded vocabulary (deterministic: the same list on every platform). */
export function embeddedVocabulary (): Vocabulary {
  if (cached != null) return cached
  const tokens: string[] = ['<unk>', '<s>', '</s>']
  const types: number[] = [TOKEN_TYPE.unknown, TOKEN_TYPE.control, TOKEN_TYPE.control]
  const scores: number[] = [0, 0, 0]
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)
    types.push(TOKEN_TYPE.byte)
    scores.push(0)
  }
  const seen = new Set<string>(tokens)
  // Score: longer pieces merge first; among equal lengths, earlier (more common) words win.
  let rank = 0
  const add = (piece: string): void => {
    if (seen.has(piece)) return
    seen.add(piece)
    tokens.push(piece)
    types.push(TOKEN_TYPE.normal)
    scores.push(-1000 + [...piece].length * 10 - rank++ * 1e-4)
  }
  const addWithPrefixes = (piece: string): void => {
    const chars = [...piece]
    for (let i = 1; i <= chars.length; i++) add(chars.slice(0, i).join(''))
  }
  add(SPACE)
  for (const c of SINGLE_CHARS) { add(c); add(SPACE + c) }
  const words = WORDS.split(/\s+/).filter(w => w.length > 0)
  for (const w of words) {
    addWithPrefixes(SPACE + w)
    addWithPrefixes(w)
    const cap = w[0].toUpperCase() + w.slice(1)
    if (cap !== w) addWithPrefixes(SPACE + cap)
  }
  for (const s of SUFFIXES) addWithPrefixes(s)
  // Frequent punctuation runs seen in chat and code prompts.
  for (const p of ['.\u2581', ',\u2581', '()', '();', '):', '{}', '=>', '==', '===', '!=', '//', '\u2581=', '\u2581==', '\u2581=>', '\u2581{', '\u2581}', '\u2581(']) addWithPrefixes(p)
  cached = { tokens, scores, types, unkId: 0, bosId: 1, eosId: 2 }
  return cached
}
