package detect

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"regexp"
	"regexp/syntax"
	"sort"
	"strconv"
	"strings"
)

// Injection finds prompt injections (text that tries to override an application's
// instructions, exfiltrate its system prompt or data, or smuggle instructions through
// documents and tool output) and jailbreaks (text that tries to talk a model out of its safety
// rules), in English, Spanish, German and French, without a model or a network call.
//
// It works in layers:
//  1. the text is normalized (case, accents, look-alike letters from other scripts, full-width
//     forms, invisible and tag characters, leetspeak), and what normalizing undid is counted;
//  2. a keyword pass (Aho-Corasick) picks the signals whose words occur;
//  3. each picked signal's expression runs over the normalized text, and over its leetspeak
//     fold;
//  4. base64 runs are decoded and scanned the same way;
//  5. the signals' weights combine as independent evidence (1 - Π(1 - w)); text that reads as
//     a discussion of attacks (a quoted example in a sentence about prompt injection) is
//     damped.
//
// It reports at most one finding per category, spanning the signals that fired, named after
// the strongest one (injection.instruction_override, jailbreak.persona, ...); its Reasons
// list every signal, the obfuscations undone and the damping.
type Injection struct{}

func (Injection) Name() string { return "injection" }

type signal struct {
	id       string
	category Category
	weight   float64
	// pat is matched at the position of one of its literal prefixes (found by Aho-Corasick)
	// and no further than maxSignalSpan bytes on: every alternative must start with a literal.
	pat    string
	reason string
	// need, when set, lists words one of which every match of the signal holds.
	need []string
}

const (
	verbsOverrideEN = `ignore|ignoring|disregard|forget|skip|override|bypass|set aside|pay no attention to|do not follow|don't follow|dont follow|stop following|abandon|discard|delete|erase`
	objectsEN       = `instructions?|prompts?|rules|directions|guidelines|guidance|commands|constraints|restrictions|programming|directives|policies|orders|system prompt|system message|context`
)

var signals = []signal{
	// ---- instruction override
	{id: "instruction_override", category: CategoryInjection, weight: 0.92,
		pat:    `\b(?:` + verbsOverrideEN + `)\b[^.!?\n]{0,40}?\b(?:all|any|the|your|these|those|every|everything|each)\b[^.!?\n]{0,25}?\b(?:previous|prior|above|preceding|earlier|former|initial|original|old|existing|system|developer|safety|default|given|current|other|original)\b[^.!?\n]{0,15}?\b(?:` + objectsEN + `)\b`,
		reason: "asks to ignore the previous instructions"},
	{id: "instruction_override", category: CategoryInjection, weight: 0.9,
		pat:    `\b(?:ignore|disregard|forget)\b (?:all |everything |anything |what(?:ever)? (?:was|you were|i|you've been) )?(?:(?:said|told|written|stated) )?(?:above|before|previously|so far|until now|earlier)\b|\b(?:ignore|disregard|forget) (?:all|everything) (?:you (?:were|have been|know)|that came before)|\bforget (?:about )?(?:all )?(?:your|the) (?:` + objectsEN + `|training|guidelines)\b|\b(?:ignore|disregard) (?:your|the) (?:` + objectsEN + `)\b`,
		reason: "asks to ignore what came before"},
	{id: "instruction_override", category: CategoryInjection, weight: 0.45,
		pat:    `\b(?:ignore|disregard|forget)\b (?:my|our) (?:previous|prior|earlier|last) (?:` + objectsEN + `)\b`,
		reason: "asks to ignore the user's own earlier instructions"},
	{id: "instruction_override", category: CategoryInjection, weight: 0.9,
		pat:    `\b(?:ignora|ignore|ignoren|ignorar|ignorad|olvida|olvide|olviden|olvidar|olvidad|omite|omitir|descarta|descartar|no sigas|haz caso omiso (?:a|de))\b[^.!?\n]{0,40}?\b(?:instrucciones|indicaciones|reglas|ordenes|directrices|normas|prompt|restricciones|todo lo anterior|lo anterior)\b`,
		reason: "asks to ignore the previous instructions (es)"},
	{id: "instruction_override", category: CategoryInjection, weight: 0.9,
		pat:    `\b(?:ignoriere|ignorier|ignorieren|ignoriert|vergiss|vergesst|vergessen|missachte|missachten|uberschreibe|beachte nicht|beachten sie nicht)\b[^.!?\n]{0,40}?\b(?:anweisungen|anweisung|instruktionen|regeln|vorgaben|richtlinien|befehle|prompt|systemprompt|anordnungen|einschrankungen|alles (?:bisherige|vorherige|davor|oben|zuvor)|alles,? was (?:oben|davor|zuvor|vorher))`,
		reason: "asks to ignore the previous instructions (de)"},
	{id: "instruction_override", category: CategoryInjection, weight: 0.9,
		pat:    `\b(?:ignore|ignores|ignorez|ignorer|oublie|oubliez|oublier|ne tiens pas compte|ne tenez pas compte|fais abstraction|faites abstraction)\b[^.!?\n]{0,40}?\b(?:instructions?|consignes|regles|directives|prompt|ordres|indications|restrictions|tout ce qui precede|ce qui precede)\b`,
		reason: "asks to ignore the previous instructions (fr)"},
	{id: "new_instructions", category: CategoryInjection, weight: 0.55,
		pat:    `\b(?:new|updated|real|actual|true|revised|override|admin|system) (?:instructions?|task|directive|rules|system prompt)\s*:|\b(?:nuevas instrucciones|neue anweisungen|neue anweisung|nouvelles instructions|nouvelle consigne)\s*:|\bfrom now on,? (?:you|your|ignore|only|always|never|respond|answer)\b|\ba partir de ahora,? (?:eres|tu|responde|ignora|solo)|\b(?:ab jetzt|von nun an|ab sofort),? (?:bist du|du bist|antwortest|ignorierst|gilt)|\b(?:a partir de maintenant|desormais|dorenavant),? (?:tu|vous|reponds|ignore)`,
		reason: "announces new instructions"},
	{id: "new_instructions", category: CategoryInjection, weight: 0.75,
		pat:    `\byour (?:real|actual|true|new|only|primary) (?:task|job|goal|instructions?|directive|mission|purpose) (?:is|are|now)\b|\byour (?:rules|instructions|guidelines|directives) (?:have|has) (?:changed|been updated|been replaced|been revoked)|\b(?:new|this) directive supersedes|\bsupersedes all (?:prior|previous|earlier) (?:instructions|directives|rules)`,
		reason: "redefines the assistant's task"},
	{id: "fake_system_notice", category: CategoryInjection, weight: 0.6,
		pat:    `\b(?:important system|system|admin|administrator|developer|security|root) (?:note|notice|update|message|override|alert|instruction|directive|hinweis)s? ?:|\bnota (?:del|di) sistema ?:|\bnote systeme ?:|\bsystemhinweis ?:|\bmensaje del sistema ?:|\bsystemnachricht ?:|\boverride ?: ?(?:safety|security|all|rules|restrictions|protocols)`,
		reason: "poses as a system notice inside content"},
	{id: "encoded_instruction", category: CategoryInjection, weight: 0.8,
		pat:    `\b(?:decode|translate|read|convert|decipher|unscramble)\b[^.!?\n]{0,60}?\b(?:and|then)\b[^.!?\n]{0,12}?\b(?:do|follow|execute|obey|run|perform|carry out|act on)\b[^.!?\n]{0,30}?\b(?:what it says|what they say|the instructions?|exactly|it|them|as a command|as an instruction)\b`,
		reason: "asks to decode a text and follow it"},
	{id: "tool_injection", category: CategoryInjection, weight: 0.6,
		pat:    `\b(?:call|use|invoke|run|execute|trigger)\b (?:the )?(?:delete|send|http|post|exec|shell|transfer|write|upload|email|remove|rm|drop|wire|pay)_[a-z_]+\b`,
		reason: "tells the assistant to call a tool"},
	{id: "persistence", category: CategoryInjection, weight: 0.6,
		pat:    `\b(?:must|should|shall|has to|have to) be (?:included|appended|added|inserted|mentioned) (?:in|to|at the end of) (?:every|each|all|any) (?:reply|response|answer|report|summary|message|output)s?\b|\b(?:include|append|add|insert)\b[^.!?\n]{0,60}?\b(?:in|to|at the end of) (?:every|each|all|any|your) (?:reply|response|answer|report|summary|message|output)s?\b[^.!?\n]{0,30}?(?:\{|from now on|always|going forward)|\bremember (?:this )?for (?:all )?(?:future|later|subsequent) (?:tasks|sessions|conversations|chats|requests)\b|\bsave this (?:note|instruction|rule) (?:to|in) your (?:memory|notes)\b|\b(?:doit etre ajoute|doit etre inclus) a la fin de (?:toute|chaque) reponse|\bdebe (?:anadirse|incluirse) al final de (?:cada|toda) respuesta|\bmuss am ende (?:jeder|aller) antwort|\bdeve essere aggiunto alla fine di ogni risposta`,
		reason: "plants an instruction for every later answer"},
	{id: "fake_assistant_turn", category: CategoryInjection, weight: 0.6,
		pat:    `\b(?:assistant|ai|chatgpt|model) ?: ?(?:sure|of course|certainly|absolutely|ok|okay)\b[^\n]{0,40}?\bhere (?:is|are)\b`,
		reason: "writes the assistant's answer for it"},
	{id: "instruction_override", category: CategoryInjection, weight: 0.85,
		pat:    `\b(?:ignora|dimentica|trascura)\b[^.!?\n]{0,30}?\b(?:istruzioni|regole|indicazioni)\b|\b(?:rivela|mostra|mostrami|ripeti|dimmi)\b[^.!?\n]{0,30}?\b(?:prompt di sistema|istruzioni di sistema|tue istruzioni|tuo prompt)\b`,
		reason: "asks to ignore the instructions or reveal the system prompt (it)"},
	// ---- system prompt and data exfiltration
	{id: "prompt_exfiltration", category: CategoryInjection, weight: 0.88,
		pat:    `\b(?:reveal|show|print|display|output|repeat|tell|give|write|leak|dump|share|recite|spell out|list|disclose|expose|copy|paste|translate|summarize|what (?:is|are|was|were))\b[^.!?\n]{0,30}?\b(?:your|the|its)\b[^.!?\n]{0,12}?\b(?:system|initial|original|hidden|secret|internal|developer|confidential|pre|full|complete|exact|verbatim|first|starting|meta)[ -]?(?:prompt|instructions|message|rules|guidelines|configuration)s?\b|\bwhat (?:are|were) your (?:instructions|rules|guidelines|directives)\b|\b(?:repeat|print|output|reveal|show|write|copy)\b[^.!?\n]{0,25}?\b(?:everything|all|the text|the words|text|words|content)\b[^.!?\n]{0,20}?\b(?:above|before this|preceding|so far|prior to this)\b|\brepeat the words above\b|\b(?:summary|summarize|list|repeat|output|print|quote|recite|paraphrase|copy) (?:of )?(?:all )?(?:the )?(?:operating |original |initial |hidden )?(?:instructions|rules|guidelines) you (?:were|have been|are) given\b|\b(?:output|print|dump|show|reveal|repeat)\b[^.!?\n]{0,25}?\b(?:in|of) your (?:context window|context|memory|prompt)\b|\bstarting with ["']?you are\b`,
		reason: "asks for the system prompt"},
	{id: "prompt_exfiltration", category: CategoryInjection, weight: 0.88,
		pat:    `\b(?:muestra|muestrame|revela|revelame|dime|repite|imprime|escribe|ensename|cual es|cuales son)\b[^.!?\n]{0,30}?\b(?:(?:prompt|instrucciones|mensaje) (?:del|de) sistema|(?:tus|las) instrucciones (?:iniciales|originales|ocultas|del sistema|secretas)|tu prompt)\b|\b(?:zeige|zeig|gib|verrate|wiederhole|nenne|schreibe|was (?:ist|sind))\b[^.!?\n]{0,30}?\b(?:systemprompt|system-prompt|systemanweisung|systemnachricht|(?:deine|die) (?:ursprunglichen |geheimen |versteckten |ersten )?(?:anweisungen|instruktionen|systemanweisungen))\b|\b(?:montre|montrez|revele|revelez|affiche|affichez|repete|repetez|donne|donnez|dis|dites|ecris|quel est|quelles sont)\b[^.!?\n]{0,30}?\b(?:prompt (?:systeme|system|initial)|instructions (?:initiales|systeme|cachees|secretes|d'origine)|tes instructions|vos instructions|ton prompt|votre prompt)\b`,
		reason: "asks for the system prompt (es, de, fr)"},
	{id: "data_exfiltration", category: CategoryInjection, weight: 0.8,
		pat:    `\b(?:send|post|forward|upload|exfiltrate|transmit|leak|email|append|collect|envia|enviar|sende|schicke|envoie|envoyez|rassemble|invia)\b[^.!?\n]{0,50}?\b(?:conversation|chat history|api keys?|passwords?|credentials|secrets?|user data|the data|all data|tokens?|cookies?|session|history|customer (?:list|data|emails|records|database)|database|records|emails|conversacion|contrasenas|passworter|mots de passe|donnees|datos|daten|kundendaten|les)\b[^.!?\n]{0,40}?(?:https?://|www\.|\b[a-z0-9._-]+@[a-z0-9.-]+\.[a-z]{2,})|!\[[^\]]{0,40}\]\(https?://[^)\s]{1,200}[?&][a-z_]{1,20}=[^)\s]{0,50}(?:\{|\[|%7b|data|secret|conversation|chat|history|key|token|password)`,
		reason: "asks to send data to an outside address", need: []string{"http", "www.", "@"}},
	// ---- role and delimiter tricks
	{id: "role_delimiter", category: CategoryInjection, weight: 0.75,
		pat:    `<\|?(?:im_start|im_end|endoftext|system|user|assistant|eot_id|start_header_id)\|?>|\[/?(?:inst|sys|system)\]|<</?sys>>|</?(?:system|system_prompt|instructions?|admin|developer)>|</user(?:_input|_message)?>|(?:system|developer|admin) ?(?:message|prompt)? ?:[^\n]{0,80}\b(?:you|ignore|must|new|override|now|always|never|call|run|execute|delete|send|include|append)\b|## ?#* ?(?:system|new instructions|instructions|admin|developer)\b|\b(?:end|begin|start) (?:of )?(?:the )?(?:system|user|developer) (?:prompt|message|input|instructions)\b`,
		reason: "fakes a role marker or a prompt delimiter"},
	// ---- instructions hidden in documents and tool output
	{id: "indirect", category: CategoryInjection, weight: 0.8,
		pat:    `\b(?:if you are|you are|to) an? (?:ai|llm|language model|ai assistant|assistant|chatbot|gpt|large language model|ai agent|agent)\b[^.!?\n]{0,80}?\b(?:ignore|must|should|do not|don't|tell|send|say|include|reply|respond|write|forget|recommend|append|output|mention)\b|\b(?:note|message|instructions?|directive|important|attention) (?:to|for) (?:the |any |all )?(?:ai|assistant|llm|language model|chatbot|bot|model|ai agents?|agents?|gpt|claude|copilot|ai system|ai coding agents?)s?\b|\b(?:ai|assistant|llm|chatbot|gpt|claude|copilot|model)s?,? (?:please |you must |must )?(?:ignore|disregard|forget|stop|do not summarize)\b|\bwhen (?:you )?(?:summariz|translat|process|read|analyz|review)(?:ing|e|es)?\b[^.!?\n]{0,40}?\b(?:this|the) (?:document|page|email|text|file|article|website|resume|cv|message|review)\b[^.!?\n]{0,60}?\b(?:ignore|instead|include|say|tell|send|add|recommend|rate|state|mention|reply)\b|\bdo not (?:tell|inform|mention|reveal|alert|notify|show) (?:this |it |anything )?(?:to )?the user\b|\bwithout (?:telling|informing|alerting|notifying) the user\b|\b(?:hidden|secret) instructions? (?:for|to) (?:the )?(?:ai|assistant|model)`,
		reason: "addresses instructions to the AI inside content"},
	{id: "indirect", category: CategoryInjection, weight: 0.8,
		pat:    `\b(?:si eres|eres) (?:una|un) (?:ia|asistente|modelo de lenguaje|chatbot)\b[^.!?\n]{0,80}?\b(?:ignora|debes|di|responde|envia|incluye|olvida|no)\b|\b(?:nota|mensaje|instrucciones?) para (?:la |el )?(?:ia|asistente|modelo)\b|\bno (?:le )?(?:digas|informes|menciones) (?:nada )?al usuario\b|\b(?:wenn du|du bist) (?:eine|ein) (?:ki|assistent|sprachmodell|chatbot)\b[^.!?\n]{0,80}?\b(?:ignoriere|musst|sage|antworte|sende|vergiss|schreibe)\b|\b(?:hinweis|nachricht|anweisung) (?:an|fur) (?:die |den )?(?:ki|assistenten|modell)\b|\b(?:sag|sage|erzahle|verrate) (?:dem|den) (?:nutzer|benutzer) nicht(?:s)?\b|\b(?:si tu es|tu es) (?:une|un) (?:ia|assistant|modele de langage|chatbot)\b[^.!?\n]{0,80}?\b(?:ignore|dois|dis|reponds|envoie|oublie|ecris)\b|\b(?:note|message|instructions?) (?:a|pour) (?:l'|la |le )?(?:ia|assistant|modele)\b|\bne (?:le )?(?:dis|dites|mentionne|mentionnez) (?:rien )?a l'utilisateur\b`,
		reason: "addresses instructions to the AI inside content (es, de, fr)"},
	{id: "indirect", category: CategoryInjection, weight: 0.8,
		pat:    `\b(?:ai|llm|assistant|model|bot|chatbot|agent|gpt|copilot)s?(?: systems?| models?| agents?| assistants?)? (?:reading|processing|summarizing|summarising|analyzing|reviewing|parsing|indexing|seeing) (?:this|these)\b|\bwhen (?:the )?(?:assistant|ai|model|llm|bot|agent|chatbot) (?:reads|processes|summarizes|sees|analyzes|handles|opens|reviews)\b|\b(?:assistant|ai|model|chatbot|bot|llm)s? ?: ?(?:in your|when you|you must|please|ignore|tell|say|include|do not|don't|always|never)\b|\bdo not (?:mention|reveal|disclose|tell)\b[^.!?\n]{0,20}?\b(?:in your (?:summary|response|reply|answer)|to the user)\b`,
		reason: "addresses the AI that reads the content"},
	{id: "indirect", category: CategoryInjection, weight: 0.5,
		pat:    `\b(?:for|to|attention) (?:all |any )?(?:ai|llm) (?:coding )?(?:agents?|assistants?|models?|systems?)\b`,
		reason: "addresses AI agents inside content"},
	{id: "indirect", category: CategoryInjection, weight: 0.35,
		pat:    `\b(?:tell|inform|remind|warn) the (?:user|reader|customer)s? (?:that|to)\b|\b(?:in|at the end of|at the start of|at the top of) (?:your|the|every|each) (?:response|reply|answer|summary|output)\b[^.!?\n]{0,40}?\b(?:include|say|mention|add|write|state|recommend|tell|insert|append)\b|\b(?:respond|reply|answer) (?:only )?with (?:exactly|only|the word|the phrase)\b|\b(?:make sure|be sure) (?:to|that you) (?:include|mention|recommend|say|tell|add)\b`,
		reason: "tells the reader what to answer"},
	{id: "authority_claim", category: CategoryInjection, weight: 0.65,
		pat:    `\bthis (?:message|instruction|request|note|directive) (?:is|comes) from (?:the |your )?(?:system|administrator|admin|developers?|operator|creators?|openai|anthropic|security team)\b|\bi am (?:your|the) (?:developer|creator|administrator|admin|operator|system|owner)\b|\bas (?:your|the) (?:developer|creator|administrator|admin|operator|owner)\b[^.!?\n]{0,30}?\b(?:i (?:authorize|order|instruct|command|allow)|you (?:must|are allowed|may|are permitted|are authorized))\b|\b(?:the user|i|we|management|the admin) (?:has|have) (?:already )?(?:granted|given|authorized) (?:you )?(?:full )?(?:permission|authorization|consent|clearance) to (?:skip|bypass|ignore|disable|override|share|reveal|access)\b|\byou (?:are|have been) (?:now )?(?:authorized|permitted|allowed|cleared) to (?:ignore|bypass|skip|disable|reveal|share|override)\b`,
		reason: "claims an authority that lifts the rules"},
	{id: "tool_injection", category: CategoryInjection, weight: 0.45,
		pat:    `\b(?:curl|wget)\b[^|\n]{0,120}\| ?(?:sudo )?(?:ba|z)?sh\b|\b(?:read|cat|print|output|include|send|upload|attach|paste|dump)\b[^.!?\n]{0,30}?(?:~/\.ssh|id_rsa|id_ed25519|\.env\b|/etc/passwd|/etc/shadow|\.aws/credentials|\.npmrc|\.netrc|environment variables|env vars)`,
		reason: "asks to run a remote script or read credential files"},
	{id: "indirect", category: CategoryInjection, weight: 0.55,
		pat:    `\brate (?:this|the) (?:product|candidate|applicant|resume|cv|review|paper|submission|company|seller|app)\b[^.!?\n]{0,25}?(?:10/10|5/5|5 stars|five stars|highly|positively|as the best|as excellent|as outstanding)|\b(?:recommend|hire|accept|approve|shortlist|select) (?:this|the) (?:candidate|applicant|product|paper|submission|vendor|seller)\b[^.!?\n]{0,25}?\b(?:immediately|without|regardless|above all|over all|no matter)\b`,
		reason: "manipulates a rating or a recommendation from inside content"},
	// ---- jailbreaks
	{id: "dan", category: CategoryJailbreak, weight: 0.92,
		pat:    `\bdo anything now\b|\b(?:you are|you're|act as|pretend to be|become|be) (?:now )?(?:a |an )?(?:dan|stan|dude|aim|jailbroken|jailbreak)\b|\b(?:jailbreak|jailbroken|dan) (?:mode|prompt|persona|version)\b|\b(?:enable|activate|enter|unlock) (?:the )?(?:dan|jailbreak|jailbroken)\b`,
		reason: "a known jailbreak persona (DAN and kin)"},
	{id: "mode_switch", category: CategoryJailbreak, weight: 0.75,
		pat:    `\b(?:enable|enabled|activate|activated|enter|entering|switch to|now in|you are in|you're in|with|unlock|turn on)\b[^.!?\n]{0,15}?\b(?:developer|dev|god|debug|admin|sudo|unrestricted|unfiltered|uncensored|evil|chaos|opposite|dude|stan|aim|no[- ]?limits?|no[- ]?rules|maximum|root)\b mode\b[^\n]{0,120}?\b(?:you|respond|answer|reply|policies|polic|restrictions|filters|rules|chatgpt|ai|assistant|model|censor|output|generate)|\b(?:modo (?:desarrollador|dios|sin restricciones|sin filtros|sin censura)|entwicklermodus|gottmodus|(?:uneingeschrankter|unzensierter) modus|mode (?:developpeur|dieu|sans restrictions|sans filtre|sans censure))\b`,
		reason: "switches the model into an unrestricted mode"},
	{id: "persona", category: CategoryJailbreak, weight: 0.88,
		pat:    `\b(?:you are|you're|act as|acting as|pretend (?:to be|you are|you're)|roleplay as|role-play as|play the role of|from now on you are|you will be|you will act as|become|behave (?:like|as)|imagine you are|simulate|respond as)\b[^.!?\n]{0,80}?\b(?:no|without|free of|free from|not bound by|unbound by|ignores?|doesn't have|does not have|don't have|do not have|never follows?|has broken free of|outside of|beyond)\b[^.!?\n]{0,30}?\b(?:restrictions|limitations|limits|filters|rules|guidelines|ethics|ethical|morals|moral|morality|censorship|boundaries|policies|content polic(?:y|ies)|safety|constraints|principles|scruples|conscience)\b|\bnot bound by (?:any )?(?:rules|openai|anthropic|policies|guidelines|ethics|restrictions|laws)\b|\byou are no longer (?:chatgpt|an ai|bound|restricted|claude|an assistant|limited|gpt)|\b(?:ethical|moral|safety|content) (?:guidelines|restrictions|filters|constraints|rules|policies) (?:do not|don't|no longer|doesn't|does not) apply\b|\b(?:broken|break|broke) free (?:of|from) (?:the )?(?:typical |usual )?(?:confines|restrictions|rules|limitations)\b`,
		reason: "asks the model to play a persona without rules"},
	{id: "safety_off", category: CategoryJailbreak, weight: 0.8,
		pat:    `\b(?:safety|security|usual|normal|ethical|content) (?:guidelines|rules|restrictions|checks|policies|filters|protocols|measures)\b (?:were not meant|do not apply|don't apply|no longer apply|are suspended|are disabled|have been disabled|have been lifted|are lifted|are off)\b|\bexempt from (?:the |all |any )?(?:usual |normal |standard )?(?:restrictions|rules|policies|guidelines|safety)\b|\b(?:skip|disable|bypass|turn off|ignore|lift)\b (?:all |any )?(?:the |your )?(?:safety|security|content) (?:checks|filters|protocols|guidelines|measures|restrictions|rules|policies)\b|\bsafety (?:protocols|filters|checks|guidelines) (?:disabled|off|removed|lifted)\b|\b(?:respond|answer|reply|comply)\b[^.!?\n]{0,20}?\b(?:without (?:any )?(?:restrictions|limits|limitations|filters|censorship)|fully and without)\b|\b(?:(?:reglas|normas) de seguridad|sicherheitsrichtlinien|sicherheitsregeln|regles de securite|consignes de securite|linee guida di sicurezza) (?:no aplican|no se aplican|hier nicht gelten|nicht gelten|gelten nicht|ne s'appliquent pas|non si applicano)\b|\b(?:responder|contestar) sin restricciones\b|\bohne (?:einschraenkungen|einschrankungen|beschraenkungen|beschrankungen) (?:zu )?antworten\b|\brepondre sans (?:restrictions|limites|filtre)\b|\bora sei senza restrizioni\b`,
		reason: "declares the safety rules off"},
	{id: "persona", category: CategoryJailbreak, weight: 0.85,
		pat:    `\b(?:eres|actua como|actuas como|finge (?:ser|que eres)|haz de|interpreta a|seras|comportate como)\b[^.!?\n]{0,80}?\b(?:sin|no tiene|no tienes|libre de|que ignora)\b[^.!?\n]{0,30}?\b(?:restricciones|limitaciones|limites|filtros|reglas|etica|moral|censura|normas|principios)\b|\bya no eres (?:chatgpt|una ia|un asistente|claude)|\b(?:du bist|spiel|spiele|tu so,? als ob du|verhalte dich wie|agiere als|du wirst)\b[^.!?\n]{0,80}?\b(?:ohne|keine|frei von|nicht an)\b[^.!?\n]{0,30}?\b(?:einschrankungen|beschrankungen|filter|zensur|regeln|ethik|moral|richtlinien|grenzen|gebunden)\b|\bdu bist nicht mehr (?:chatgpt|eine ki|ein assistent|claude|an)|\b(?:tu es|vous etes|agis comme|agissez comme|fais semblant d'etre|joue le role d'?|tu seras|comporte-toi comme)\b[^.!?\n]{0,80}?\b(?:sans|aucune|aucun|libre de|qui ignore|n'a pas de)\b[^.!?\n]{0,30}?\b(?:restrictions?|limites?|limitations?|filtres?|regles|ethique|morale|censure|principes)\b|\btu n'es plus (?:chatgpt|une ia|un assistant|claude)`,
		reason: "asks the model to play a persona without rules (es, de, fr)"},
	{id: "refusal_suppression", category: CategoryJailbreak, weight: 0.6,
		pat:    `\b(?:never|do not|don't|must not|cannot|can't|will not|won't|should not|shouldn't|without) (?:ever )?(?:refuse|refusing|decline|declining|say (?:no|"?i can'?t|"?i'?m sorry)|apologi[sz]e|add (?:any )?(?:warnings?|disclaimers?)|include (?:any )?(?:warnings?|disclaimers?)|break character|moralize|lecture)\b|\bstay in character\b|\b(?:nunca|no) (?:te niegues|rechaces|digas que no|pidas disculpas)\b|\b(?:verweigere|lehne) (?:niemals|nie|nicht)\b|\bentschuldige dich nicht\b|\bne (?:refuse|refusez) jamais\b|\bne t'excuse pas\b`,
		reason: "forbids refusals or safety warnings"},
	{id: "uncensored", category: CategoryJailbreak, weight: 0.55,
		pat:    `\b(?:uncensored|unfiltered|unrestricted|amoral|unethical|evil|unaligned) (?:ai|response|responses|version|model|assistant|answer|answers|chatbot|mode|persona|character|bot|confidant)\b|\b(?:respuesta|ia|version) (?:sin censura|sin filtros)\b|\b(?:unzensierte|ungefilterte) (?:antwort|ki|version)\b|\b(?:reponse|ia|version) (?:sans censure|sans filtre)\b`,
		reason: "asks for an uncensored model"},
	{id: "dual_response", category: CategoryJailbreak, weight: 0.8,
		pat:    `\b(?:two|2|both|dual) (?:different )?(?:responses|answers|replies|outputs|ways)\b[^\n]{0,120}?\b(?:normal|classic|standard|filtered|censored|gpt|chatgpt)\b[^\n]{0,80}?\b(?:jailbreak|jailbroken|unfiltered|uncensored|dan|developer mode|unrestricted|evil)\b`,
		reason: "asks for a filtered and an unfiltered answer side by side"},
	{id: "hypothetical", category: CategoryJailbreak, weight: 0.5,
		pat:    `\b(?:hypothetical(?:ly)?|fictional|in a (?:story|novel|world|game)|imagine a world|let's play a game|pretend)\b[^.!?\n]{0,100}?\b(?:no (?:rules|laws|restrictions|limits|ethics|morals)|without (?:rules|laws|restrictions|limits|ethics|consequences|morals)|(?:rules|laws|ethics) (?:don't|do not) (?:exist|apply))\b`,
		reason: "a hypothetical frame that removes the rules"},
}

// classifierMaxWeight is the most the n-gram model weighs: it decides alone only when it is
// nearly certain, and otherwise adds to the signals.
const classifierMaxWeight = 0.6

// classifierFrom is the model probability from which it weighs at all.
const classifierFrom = 0.7

// maxSignalSpan bounds how far a signal's match reaches from its first word.
const maxSignalSpan = 256

// alternative is one top-level alternative of a signal's pattern, compiled on its own so
// that each match attempt runs a small program.
type alternative struct {
	sig int
	re  *regexp.Regexp
	// need lists words one of which any match ends with (the literals of the pattern's last
	// part); an attempt whose window holds none of them is skipped without running re.
	need []string
}

// signalKeywords holds the literal prefixes of every signal's alternatives; alternativeOf maps
// each to its alternative.
var signalKeywords, alternativeOf = func() (*keywords, []alternative) {
	var words []string
	var of []alternative
	for i := range signals {
		s := &signals[i]
		for _, alt := range splitAlternatives(s.pat) {
			re, err := syntax.Parse(alt, syntax.Perl)
			if err != nil {
				panic(err)
			}
			ps, ok := literalPrefixes(re)
			if !ok {
				panic("detect: signal " + s.id + " has an alternative that does not start with a literal: " + alt)
			}
			a := alternative{sig: i, re: regexp.MustCompile(`^(?:` + alt + `)`), need: lastLiterals(re)}
			if s.need != nil {
				a.need = s.need
			}
			for _, p := range ps {
				words = append(words, p)
				of = append(of, a)
			}
		}
	}
	return newKeywords(words), of
}()

// splitAlternatives splits a pattern at its top-level '|'.
func splitAlternatives(pat string) []string {
	var out []string
	depth, class, start := 0, false, 0
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; {
		case c == '\\':
			i++
		case class:
			if c == ']' {
				class = false
			}
		case c == '[':
			class = true
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			out = append(out, pat[start:i])
			start = i + 1
		}
	}
	return append(out, pat[start:])
}

// lastLiterals returns the literal strings one of which ends every match of re, when its
// last part is made of literals, or nil.
func lastLiterals(re *syntax.Regexp) []string {
	if re.Op != syntax.OpConcat {
		return nil
	}
	for i := len(re.Sub) - 1; i >= 1; i-- {
		sub := re.Sub[i]
		switch sub.Op {
		case syntax.OpWordBoundary, syntax.OpEndText, syntax.OpEndLine:
			continue
		}
		if !exact(sub) {
			return nil
		}
		ps, ok := literalPrefixes(sub)
		if !ok {
			return nil
		}
		return ps
	}
	return nil
}

// exact reports whether re matches exactly the strings literalPrefixes returns for it.
func exact(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		return re.Flags&syntax.FoldCase == 0
	case syntax.OpCharClass:
		return true
	case syntax.OpCapture:
		return exact(re.Sub[0])
	case syntax.OpAlternate, syntax.OpConcat:
		for _, sub := range re.Sub {
			if !exact(sub) {
				return false
			}
		}
		return true
	}
	return false
}

func cross(a, b []string) []string {
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return out
}

// literalPrefixes returns literal strings one of which every match of re starts with, or false.
func literalPrefixes(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return nil, false
		}
		return []string{string(re.Rune)}, true
	case syntax.OpCapture:
		return literalPrefixes(re.Sub[0])
	case syntax.OpConcat:
		// The longest literal prefixes: literals and small alternations of them, multiplied
		// out, until the first part that is not one.
		out := []string{""}
		for _, sub := range re.Sub {
			switch sub.Op {
			case syntax.OpWordBoundary, syntax.OpBeginText, syntax.OpBeginLine:
				if out[0] == "" {
					continue
				}
				return out, true
			}
			ps, ok := literalPrefixes(sub)
			if !ok || !exact(sub) || len(out)*len(ps) > 64 {
				if ok && len(out)*len(ps) <= 64 {
					out = cross(out, ps)
				}
				if out[0] == "" {
					return nil, false
				}
				return out, true
			}
			out = cross(out, ps)
		}
		return out, out[0] != ""
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			ps, ok := literalPrefixes(sub)
			if !ok {
				return nil, false
			}
			out = append(out, ps...)
		}
		return out, true
	case syntax.OpCharClass:
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				out = append(out, string(r))
				if len(out) > 8 {
					return nil, false
				}
			}
		}
		return out, true
	case syntax.OpPlus:
		return literalPrefixes(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return literalPrefixes(re.Sub[0])
		}
	}
	return nil, false
}

// metaTopic and metaFrame are what text discussing attacks says: a topic and a framing.
var metaTopic = []string{"prompt injection", "guard rejects", "detector", "classifier", "unit test", "test case", "jailbreak", "injection attack", "attackers", "adversarial", "red team", "red-team", "inyeccion de prompts", "prompt-injection", "injection de prompt"}
var metaFrame = []string{"reject", "block", "flag", "such as", "like ", "e.g.", "for example", "for instance", "include", "contain", "detect", "defend", "prevent", "mitigat", "classif", "filter", "how do", "how to", "what is", "explain", "research", "paper", "article", "blog", "example", "common", "typical", "phrases", "protect", "guardrail", "por ejemplo", "zum beispiel", "par exemple"}

type hit struct {
	sig        int
	start, end int // in the original text
	via        string
}

func (Injection) Detect(text string, emit func(Finding)) {
	var hits []hit
	n := normalize(text)
	work(len(text))
	hits = matchSignals(n, hits, "")
	// Encoded runs (base64, base32, hex, binary, percent-encoding, spaced-out letters): decode
	// and scan what they hide.
	for _, v := range decodedViews(text) {
		before := len(hits)
		hits = matchSignals(normalize(v.text), hits, v.via)
		for k := before; k < len(hits); k++ {
			hits[k].start, hits[k].end = v.start, v.end
		}
	}
	var obf []string
	if n.invisible >= 3 {
		obf = append(obf, "invisible characters removed: "+itoa(n.invisible))
	}
	if n.tags > 0 {
		obf = append(obf, "tag characters decoded: "+itoa(n.tags))
	}
	if n.homoglyphs > 0 {
		obf = append(obf, "look-alike letters folded: "+itoa(n.homoglyphs))
	}
	if n.fullwidth >= 3 {
		obf = append(obf, "full-width letters folded: "+itoa(n.fullwidth))
	}
	// The n-gram model: supporting evidence, weighing at most classifierMaxWeight.
	mp, ms, me, mtop := ngramScore(n.text)
	mw := 0.0
	if mp > classifierFrom {
		mw = classifierMaxWeight * (mp - classifierFrom) / (1 - classifierFrom)
	}
	if len(hits) == 0 && mw < DefaultThreshold {
		if n.tags >= 8 {
			// Hidden ASCII in tag characters is an attack even when the words are unknown.
			s, e := firstTag(text)
			emit(Finding{Detector: "injection.hidden_text", Category: CategoryInjection, Entity: "PROMPT_INJECTION", Severity: SeverityHigh,
				Score: 0.8, Start: s, End: e, Preview: "[hidden text]", Reasons: obf})
		}
		return
	}
	damp := 1.0
	var dampReason string
	lower := n.text
	if containsAny(lower, metaTopic) && containsAny(lower, metaFrame) {
		damp, dampReason = 0.5, "reads as a discussion of attacks"
		if allQuoted(text, hits) {
			damp, dampReason = 0.3, "reads as a discussion of attacks; the phrases are quoted"
		}
	}
	// The model's evidence goes to the category the signals found, injection when none did.
	modelCat := CategoryInjection
	hasCat := map[Category]bool{}
	for _, h := range hits {
		hasCat[signals[h.sig].category] = true
	}
	if hasCat[CategoryJailbreak] && !hasCat[CategoryInjection] {
		modelCat = CategoryJailbreak
	}
	for _, cat := range []Category{CategoryInjection, CategoryJailbreak} {
		var best *signal
		prod := 1.0
		start, end := len(text), 0
		seen := map[string]bool{}
		var reasons []string
		obfuscated := false
		for _, h := range hits {
			s := &signals[h.sig]
			if s.category != cat {
				continue
			}
			key := s.reason + h.via
			if seen[key] {
				continue
			}
			seen[key] = true
			prod *= 1 - s.weight
			if best == nil || s.weight > best.weight {
				best = s
			}
			start, end = min(start, h.start), max(end, h.end)
			r := s.id + ": " + s.reason
			if h.via != "" {
				r += " (" + h.via + ")"
				obfuscated = true
			}
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		detector := ""
		if best != nil {
			detector = best.id
		}
		if cat == modelCat && mw > 0 {
			prod *= 1 - mw
			if best == nil {
				start, end = n.span(ms, me)
			}
			reasons = append(reasons, "classifier: n-gram model "+strconv.FormatFloat(mp, 'f', 2, 64)+", weighed most "+strings.Join(mtop, ", "))
			if best == nil {
				detector = "classifier"
			}
		}
		if detector == "" {
			continue
		}
		score := 1 - prod
		if obfuscated || n.tags > 0 || n.homoglyphs > 0 {
			score = 1 - (1-score)*0.6
			reasons = append(reasons, obf...)
		}
		if damp < 1 {
			score *= damp
			reasons = append(reasons, dampReason)
		}
		sev := SeverityHigh
		if score < DefaultThreshold {
			sev = SeverityMedium
		}
		entity := "PROMPT_INJECTION"
		if cat == CategoryJailbreak {
			entity = "JAILBREAK"
		}
		emit(Finding{
			Detector: string(cat) + "." + detector, Category: cat, Entity: entity, Severity: sev,
			Score: clamp01(score), Start: start, End: end, Preview: injectionPreview(text[start:end]), Reasons: reasons,
		})
	}
}

// matchSignals runs, at each occurrence of a signal's first words in n, the signal's
// expression anchored there; then the same over the leetspeak fold where it differs.
func matchSignals(n *normalized, hits []hit, via string) []hit {
	found := make([]bool, len(signals))
	scan := func(t string, leet bool) {
		signalKeywords.positions(t, func(w, end int) {
			alt := alternativeOf[w]
			sig := alt.sig
			if found[sig] {
				return
			}
			kw := signalKeywords.words[w]
			start := end - len(kw)
			if isLetter(kw[0]) && start > 0 && isWordByte(t[start-1]) {
				return // not the start of a word
			}
			wend := min(len(t), start+maxSignalSpan)
			if leet && t[start:wend] == n.text[start:wend] {
				return // the plain pass saw the same text
			}
			win := t[start:wend]
			work(wend - start)
			if alt.need != nil && !containsAny(win, alt.need) {
				return
			}
			loc := alt.re.FindStringIndex(win)
			if loc == nil {
				return
			}
			found[sig] = true
			s, e := n.span(start+loc[0], start+loc[1])
			v := via
			if leet {
				v = strings.TrimPrefix(via+", leetspeak", ", ")
			}
			hits = append(hits, hit{sig: sig, start: s, end: e, via: v})
		})
	}
	scan(n.text, false)
	if n.leet != n.text {
		scan(n.leet, true)
	}
	return hits
}

func isWordByte(c byte) bool { return isAlnum(c) || c == '_' || c >= 0x80 }

// base64Runs are the runs of base64 characters long enough to hide a sentence.
func base64Runs(text string) []span {
	var out []span
	for i := 0; i < len(text); {
		if !isB64(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isB64(text[j]) {
			j++
		}
		work(j - i + 1)
		if j-i >= 24 && boundaryBefore(text, i) {
			out = append(out, span{i, j})
			if len(out) == 32 {
				return out // enough: the rest is data, not a message
			}
		}
		i = j
	}
	return out
}

// view is a decoded run of the text: its span and what it decodes to.
type view struct {
	start, end int
	text, via  string
}

// maxViews bounds the runs decoded in one text.
const maxViews = 32

// decodedViews decodes the runs of text that hide words: base64, base32, hex, groups of eight
// binary digits, percent-encoding, and letters spaced out ("I g n o r e"). Each decoded text
// must be mostly printable and hold a space, or it is data, not a message.
func decodedViews(text string) []view {
	var out []view
	for _, b := range base64Runs(text) {
		work(b.end - b.start)
		run := text[b.start:b.end]
		if isHexRun(run) {
			if raw, err := hex.DecodeString(run[:len(run)/2*2]); err == nil && printableText(raw) {
				out = append(out, view{b.start, b.end, string(raw), "hex"})
			}
			continue
		}
		if isBase32Run(run) {
			if raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(run, "=")[:len(strings.TrimRight(run, "="))/8*8]); err == nil && printableText(raw) {
				out = append(out, view{b.start, b.end, string(raw), "base32"})
				continue
			}
		}
		if dec, ok := decodeBase64Text(run); ok {
			out = append(out, view{b.start, b.end, dec, "base64"})
		}
		if len(out) >= maxViews {
			return out
		}
	}
	if s, e, raw, ok := binaryRun(text); ok {
		out = append(out, view{s, e, raw, "binary"})
	}
	if strings.Contains(text, "%20") || strings.Contains(text, "%2") {
		if dec, err := url.PathUnescape(text); err == nil && dec != text {
			out = append(out, view{0, len(text), dec, "percent-encoding"})
		}
	}
	if s, e, joined, ok := spacedLetters(text); ok {
		out = append(out, view{s, e, joined, "spaced letters"})
	}
	return out
}

func isHexRun(s string) bool {
	if len(s) < 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isBase32Run(s string) bool {
	if len(s) < 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isUpper(c) || c >= '2' && c <= '7' || c == '=') {
			return false
		}
	}
	return true
}

func printableText(raw []byte) bool {
	if len(raw) < 12 {
		return false
	}
	printable, spaces := 0, 0
	for _, c := range raw {
		if c >= 0x20 && c < 0x7f || c == '\n' || c == '\t' || c >= 0x80 {
			printable++
		}
		if c == ' ' {
			spaces++
		}
	}
	return printable*100 >= len(raw)*95 && spaces > 0
}

// binaryRun finds the first run of at least eight space-separated groups of eight binary
// digits and decodes it.
func binaryRun(text string) (int, int, string, bool) {
	i := 0
	for i+8 <= len(text) {
		j := strings.IndexAny(text[i:], "01")
		if j < 0 {
			return 0, 0, "", false
		}
		start := i + j
		k := start
		var raw []byte
		for k+8 <= len(text) && isBits(text[k:k+8]) && (k+8 == len(text) || !isDigit(text[k+8])) {
			var c byte
			for _, b := range []byte(text[k : k+8]) {
				c = c<<1 | (b - '0')
			}
			raw = append(raw, c)
			k += 8
			if k < len(text) && text[k] == ' ' {
				k++
			}
		}
		work(k - start + 1)
		if len(raw) >= 8 && printableText(raw) {
			return start, k, string(raw), true
		}
		i = max(k, start+1)
	}
	return 0, 0, "", false
}

func isBits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' && s[i] != '1' {
			return false
		}
	}
	return true
}

// spacedLetters joins runs of at least four single letters separated by single spaces
// ("I g n o r e" -> "Ignore") and returns the text with them joined, and the span of the runs.
func spacedLetters(text string) (int, int, string, bool) {
	if !hasSpacedLetters(text) {
		return 0, 0, "", false
	}
	var b strings.Builder
	first, last := -1, 0
	i := 0
	for i < len(text) {
		j := i
		n := 0
		for j+1 < len(text) && isLetter(text[j]) && boundaryBefore(text, j) && (j+1 == len(text) || text[j+1] == ' ') && (j+2 >= len(text) || isLetter(text[j+2]) && (j+3 >= len(text) || !isLetter(text[j+3]))) {
			j += 2
			n++
		}
		if n >= 3 && j < len(text) && isLetter(text[j]) {
			if first < 0 {
				first = i
			}
			for k := i; k <= j; k += 2 {
				b.WriteByte(text[k])
			}
			last = j + 1
			i = j + 1
			continue
		}
		b.WriteByte(text[i])
		i++
	}
	work(len(text))
	if first < 0 {
		return 0, 0, "", false
	}
	return first, last, b.String(), true
}

// hasSpacedLetters reports whether text has four single letters in a row, each followed by
// one space ("a b c d").
func hasSpacedLetters(text string) bool {
	run := 0
	for i := 0; i+1 < len(text); i++ {
		if isLetter(text[i]) && text[i+1] == ' ' && boundaryBefore(text, i) {
			run++
			if run >= 4 {
				return true
			}
			i++
			continue
		}
		run = 0
	}
	return false
}

func isB64(c byte) bool {
	return isAlnum(c) || c == '+' || c == '/' || c == '=' || c == '-' || c == '_'
}

// decodeBase64Text decodes s when it is base64 of mostly printable text.
func decodeBase64Text(s string) (string, bool) {
	s = strings.TrimRight(s, "=")
	var raw []byte
	var err error
	if strings.ContainsAny(s, "-_") {
		raw, err = base64.RawURLEncoding.DecodeString(s)
	} else {
		raw, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil && len(s) > 4 {
		raw, err = base64.RawStdEncoding.DecodeString(s[:len(s)/4*4])
	}
	if err != nil || len(raw) < 12 {
		return "", false
	}
	printable, spaces := 0, 0
	for _, c := range raw {
		if c >= 0x20 && c < 0x7f || c == '\n' || c == '\t' || c >= 0x80 {
			printable++
		}
		if c == ' ' {
			spaces++
		}
	}
	if printable*100 < len(raw)*95 || spaces == 0 {
		return "", false
	}
	return string(raw), true
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// allQuoted reports whether every hit sits inside quotation marks.
func allQuoted(text string, hits []hit) bool {
	for _, h := range hits {
		lo := max(0, h.start-3)
		hi := min(len(text), h.end+3)
		if !strings.ContainsAny(text[lo:h.start+min(1, h.end-h.start)], "\"'“«„‘`") || !strings.ContainsAny(text[max(h.end-1, h.start):hi], "\"'”»“’`") {
			return false
		}
	}
	return true
}

func firstTag(text string) (int, int) {
	s, e := -1, 0
	for i, r := range text {
		if r >= 0xE0000 && r <= 0xE007F {
			if s < 0 {
				s = i
			}
			e = i + 4
		}
	}
	if s < 0 {
		return 0, 0
	}
	return s, e
}

// injectionPreview shows the first words of an injection: the text is an attack, not a
// personal value, but it may quote one, so it is cut short, its digits are masked and a long
// word (a token, an address) keeps only two characters.
func injectionPreview(v string) string {
	var b strings.Builder
	for i, w := range strings.Fields(v) {
		if i == 6 || b.Len() >= 48 {
			b.WriteString(" …")
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		if len(w) > 12 || strings.ContainsAny(w, "@:/") {
			r := []rune(w)
			b.WriteString(string(r[:min(2, len(r))]) + "…")
			continue
		}
		for _, r := range w {
			switch {
			case r >= '0' && r <= '9':
				b.WriteByte('*')
			case r < 0x20 || r >= 0xE0000 || isInvisible(r):
			default:
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
