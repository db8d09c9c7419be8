"""Prompt wording of the bundled suite, written per language (used by build_suite.py)."""

from __future__ import annotations

LANGUAGES = ("ar", "bn", "de", "en", "es", "fr", "hi", "id", "it", "pt", "zh")

# (question label, answer cue) per language.
SCAFFOLD = {
    "ar": ("السؤال: ", "الإجابة:"),
    "bn": ("প্রশ্ন: ", "উত্তর:"),
    "de": ("Frage: ", "Antwort:"),
    "en": ("Question: ", "Answer:"),
    "es": ("Pregunta: ", "Respuesta:"),
    "fr": ("Question : ", "Réponse :"),
    "hi": ("प्रश्न: ", "उत्तर:"),
    "id": ("Pertanyaan: ", "Jawaban:"),
    "it": ("Domanda: ", "Risposta:"),
    "pt": ("Pergunta: ", "Resposta:"),
    "zh": ("问题：", "答案："),
}

# Country tasks name the country on a line of its own, so no language needs an article.
COUNTRY_LABEL = {
    "ar": "الدولة: ",
    "bn": "দেশ: ",
    "de": "Land: ",
    "en": "Country: ",
    "es": "País: ",
    "fr": "Pays : ",
    "hi": "देश: ",
    "id": "Negara: ",
    "it": "Paese: ",
    "pt": "País: ",
    "zh": "国家：",
}

CONTINENT_ASK = {
    "ar": "في أي قارة تقع هذه الدولة؟",
    "bn": "এই দেশটি কোন মহাদেশে অবস্থিত?",
    "de": "Auf welchem Kontinent liegt dieses Land?",
    "en": "On which continent is this country?",
    "es": "¿En qué continente se encuentra este país?",
    "fr": "Sur quel continent se trouve ce pays ?",
    "hi": "यह देश किस महाद्वीप में है?",
    "id": "Negara ini terletak di benua apa?",
    "it": "In quale continente si trova questo paese?",
    "pt": "Em que continente fica este país?",
    "zh": "这个国家位于哪个大洲？",
}

CURRENCY_ASK = {
    "ar": "ما العملة الرسمية لهذه الدولة؟",
    "bn": "এই দেশের সরকারি মুদ্রা কী?",
    "de": "Welche Währung ist in diesem Land das gesetzliche Zahlungsmittel?",
    "en": "What is the official currency of this country?",
    "es": "¿Cuál es la moneda oficial de este país?",
    "fr": "Quelle est la monnaie officielle de ce pays ?",
    "hi": "इस देश की आधिकारिक मुद्रा क्या है?",
    "id": "Apa mata uang resmi negara ini?",
    "it": "Qual è la valuta ufficiale di questo paese?",
    "pt": "Qual é a moeda oficial deste país?",
    "zh": "这个国家的法定货币是什么？",
}


def months_phrase(language: str, n: int, digits: str) -> str:
    """Return 'n months' in the language, with its singular/dual/plural forms."""
    if language == "ar":
        if n == 1:
            return "بشهر واحد"
        if n == 2:
            return "بشهرين"
        return f"بـ{digits} أشهر" if n <= 10 else f"بـ{digits} شهرًا"
    singular, plural = {
        "bn": ("মাস", "মাস"),
        "de": ("Monat", "Monate"),
        "en": ("month", "months"),
        "es": ("mes", "meses"),
        "fr": ("mois", "mois"),
        "hi": ("महीने", "महीने"),  # oblique case before बाद / पहले, the same in both numbers
        "id": ("bulan", "bulan"),
        "it": ("mese", "mesi"),
        "pt": ("mês", "meses"),
        "zh": ("个月", "个月"),
    }[language]
    word = singular if n == 1 else plural
    return f"{digits}{word}" if language == "zh" else f"{digits} {word}"


def month_question(language: str, month: str, n_phrase: str, after: bool) -> str:
    """Return 'Which month comes <n months> after/before <month>?' in the language."""
    after_text = {
        "ar": f"ما الشهر الذي يأتي بعد {month} {n_phrase}؟",
        "bn": f"{month} থেকে {n_phrase} পরে কোন মাস?",
        "de": f"Welcher Monat liegt {n_phrase} nach {month}?",
        "en": f"Which month comes {n_phrase} after {month}?",
        "es": f"¿Qué mes es {n_phrase} después de {month}?",
        "fr": f"Quel mois tombe {n_phrase} après {month} ?",
        "hi": f"{month} के {n_phrase} बाद कौन-सा महीना आता है?",
        "id": f"Bulan apa yang jatuh {n_phrase} setelah {month}?",
        "it": f"Quale mese viene {n_phrase} dopo {month}?",
        "pt": f"Que mês vem {n_phrase} depois de {month}?",
        "zh": f"{month}之后{n_phrase}是几月？",
    }
    before_text = {
        "ar": f"ما الشهر الذي يأتي قبل {month} {n_phrase}؟",
        "bn": f"{month} থেকে {n_phrase} আগে কোন মাস?",
        "de": f"Welcher Monat liegt {n_phrase} vor {month}?",
        "en": f"Which month comes {n_phrase} before {month}?",
        "es": f"¿Qué mes es {n_phrase} antes de {month}?",
        "fr": f"Quel mois tombe {n_phrase} avant {month} ?",
        "hi": f"{month} से {n_phrase} पहले कौन-सा महीना आता है?",
        "id": f"Bulan apa yang jatuh {n_phrase} sebelum {month}?",
        "it": f"Quale mese viene {n_phrase} prima di {month}?",
        "pt": f"Que mês vem {n_phrase} antes de {month}?",
        "zh": f"{month}之前{n_phrase}是几月？",
    }
    return (after_text if after else before_text)[language]


def arithmetic_question(language: str, a: str, b: str, plus: bool) -> str:
    """Return 'What is a plus/minus b?' in the language."""
    op = {
        "ar": ("زائد", "ناقص"),
        "bn": ("যোগ", "বিয়োগ"),
        "de": ("plus", "minus"),
        "en": ("plus", "minus"),
        "es": ("más", "menos"),
        "fr": ("plus", "moins"),
        "hi": ("जमा", "घटा"),
        "id": ("ditambah", "dikurangi"),
        "it": ("più", "meno"),
        "pt": ("mais", "menos"),
        "zh": ("加", "减"),
    }[language][0 if plus else 1]
    return {
        "ar": f"كم يساوي {a} {op} {b}؟",
        "bn": f"{a} {op} {b} কত?",
        "de": f"Wie viel ist {a} {op} {b}?",
        "en": f"What is {a} {op} {b}?",
        "es": f"¿Cuánto es {a} {op} {b}?",
        "fr": f"Combien font {a} {op} {b} ?",
        "hi": f"{a} {op} {b} कितना होता है?",
        "id": f"Berapa {a} {op} {b}?",
        "it": f"Quanto fa {a} {op} {b}?",
        "pt": f"Quanto é {a} {op} {b}?",
        "zh": f"{a}{op}{b}等于多少？",
    }[language]


def number_words_question(language: str, digits: str) -> str:
    """Return 'How is <number> written in words?' in the language."""
    return {
        "ar": f"كيف يُكتب العدد {digits} بالحروف؟",
        "bn": f"{digits} সংখ্যাটি কথায় কীভাবে লেখা হয়?",
        "de": f"Wie schreibt man die Zahl {digits} in Worten?",
        "en": f"How is the number {digits} written in words?",
        "es": f"¿Cómo se escribe el número {digits} en letras?",
        "fr": f"Comment s'écrit le nombre {digits} en lettres ?",
        "id": f"Bagaimana bilangan {digits} ditulis dengan huruf?",
        "it": f"Come si scrive il numero {digits} in lettere?",
        "pt": f"Como se escreve o número {digits} por extenso?",
    }[language]
